// The a2a-server web console. Plain ES modules, no dependencies, served as they are.
//
// A send is one A2A 1.0 `SendStreamingMessage` (run.js follows it to the end, resuming dropped streams).
// In chat mode every message after the first carries the conversation's `contextId`, so the server feeds
// the skill the earlier turns; a task that asks for input gets the next message as its continuation
// (`taskId`). The task list (tasks.js) opens any task: its whole context is shown and a task still
// running is watched with `SubscribeToTask`.

import { askForKey, authHeaders, forgetKey, useStoredKey } from "./auth.js";
import { EventLog } from "./log.js";
import { Run } from "./run.js";
import { statsOf } from "./stats.js";
import { TaskList } from "./tasks.js";
import { Transcript } from "./transcript.js";
import {
  A2A_HEADERS, Fatal, INTERRUPTED, SETTLED, call, httpErrorText, partsText, rpc, skillOf, stateName, uid,
} from "./wire.js";

const $ = (id) => document.getElementById(id);
const ui = {
  agent: $("agent"), form: $("send-form"), skill: $("skill"), skillName: $("skill-name"),
  skillDescription: $("skill-description"), about: $("skill-about"), chat: $("chat"), newChat: $("new-chat"),
  context: $("context"), examples: $("examples"), turns: $("turns"),
  inference: $("inference-params"), modelField: $("model-field"), model: $("model"),
  maxTokens: $("max-tokens"), temperature: $("temperature"), echo: $("echo-params"), delay: $("delay-ms"),
  prompt: $("prompt"), send: $("send"), cancel: $("cancel"), state: $("state"), taskId: $("task-id"),
  notice: $("notice"), error: $("error"), keyForm: $("key-form"),
};

const transcript = new Transcript({ box: $("transcript"), list: ui.turns, empty: $("empty"), jump: $("jump") });
const log = new EventLog({ list: $("events"), count: $("events-count") });
const tasks = new TaskList({
  panel: $("tasks-panel"), list: $("tasks"), note: $("tasks-note"), live: $("tasks-live"), onOpen: openTask,
});

let skills = [];
let run = null; // the run in view: its events fill the log, its state the status line
// The conversation: its context once the server named it, and a task waiting for the user's input.
const conversation = { contextId: null, taskId: null };

// ---------------------------------------------------------------------------------------------- runs

/** What a run tells the page; a run that is no longer in view still paints its own turn. */
function viewFor(turn) {
  return {
    event: (r, kind, eventId, text) => (r === run ? log.add(kind, eventId, text, r.taskId) : null),
    updateEvent: (r, entry, eventId, text) => entry && log.update(entry, eventId, text, r.taskId),
    isLastEvent: (entry) => entry !== null && log.isLast(entry),
    notice: (r, text) => r === run && showNotice(text),
    // a run's error is its turn's: it shows where the answer would have been (the banner is the page's)
    error: (r, message) => turn.setNote(message, "error"),
    task: (r, task) => {
      turn.setTask(task.id);
      tasks.track({ id: task.id, contextId: task.contextId, state: task.status.state, skill: turn.skill.textContent });
      if (r !== run) return;
      ui.taskId.textContent = task.id;
      ui.cancel.disabled = false;
      tasks.markCurrent(task.id);
      adoptContext(r.contextId);
    },
    changed: (r) => {
      paint(r, turn);
      if (r.taskId && r.state) tasks.track({ id: r.taskId, state: r.state });
    },
    settled: (r) => {
      paint(r, turn);
      if (r.taskId) tasks.track({ id: r.taskId, contextId: r.contextId, state: r.state });
      if (r !== run) return;
      adoptContext(r.contextId);
      conversation.taskId = INTERRUPTED.has(r.state) ? r.taskId : null;
      showNotice(null);
      ui.send.disabled = false;
      ui.cancel.disabled = true;
      ui.turns.setAttribute("aria-busy", "false");
      if ([document.body, ui.send, ui.cancel].includes(document.activeElement)) ui.prompt.focus({ preventScroll: true });
    },
  };
}

function runStateName(r) {
  if (r.state === null) return "sending";
  return r.state === "message" || r.state === "error" ? r.state : stateName(r.state);
}

function paint(r, turn) {
  turn.setText(r.text);
  turn.setState(runStateName(r));
  turn.setStats(statsOf(r.metadata, r));
  if (r.statusText && turn.note.dataset.kind !== "error") turn.setNote(r.statusText);
  if (r !== run) return;
  showState(runStateName(r));
  transcript.reveal();
}

/** `opening`: "sending" for a send, "connecting" for a watch, until the first frame names the state. */
function startRun(turn, opening = "sending") {
  run?.abort();
  run = new Run(viewFor(turn));
  showError(null);
  showNotice(null);
  showState(opening);
  ui.taskId.textContent = "—";
  log.clear();
  ui.turns.setAttribute("aria-busy", "true");
  ui.send.disabled = true;
  ui.cancel.disabled = true;
  return run;
}

// ---------------------------------------------------------------------------------------------- conversation

function adoptContext(contextId) {
  if (!contextId || conversation.contextId === contextId) return;
  conversation.contextId = contextId;
  showContext();
}

function newConversation() {
  run?.abort();
  run = null;
  conversation.contextId = null;
  conversation.taskId = null;
  transcript.clear();
  log.clear();
  showContext();
  showError(null);
  showNotice(null);
  showState("idle");
  ui.taskId.textContent = "—";
  ui.turns.setAttribute("aria-busy", "false");
  ui.send.disabled = skills.length === 0;
  ui.cancel.disabled = true;
}

function showContext() {
  const id = conversation.contextId;
  ui.context.textContent = !ui.chat.checked ? "one message, one context" : id ? `context ${id.slice(0, 8)}` : "new context";
  ui.context.title = id ? `contextId ${id}` : "";
  ui.context.dataset.contextId = id ?? "";
}

async function onSend(event) {
  event.preventDefault();
  if (ui.send.disabled) return;
  const text = ui.prompt.value;
  if (!text.trim()) {
    showError("Type a message first.");
    ui.prompt.focus();
    return;
  }
  let metadata;
  try {
    metadata = collectMetadata();
  } catch (err) {
    showError(err.message);
    return;
  }
  if (!ui.chat.checked || conversation.contextId === null) newConversation();
  const message = { messageId: uid(), role: "ROLE_USER", parts: [{ text }], metadata };
  if (conversation.contextId) message.contextId = conversation.contextId;
  if (conversation.taskId) message.taskId = conversation.taskId;
  transcript.addUser(text);
  const current = startRun(transcript.addAgent(metadata.skill));
  log.add("send", null, `SendStreamingMessage to ${metadata.skill}` +
    (message.contextId ? ` in context ${message.contextId}` : ""));
  ui.prompt.value = "";
  await current.follow(rpc("SendStreamingMessage", { message }));
  // nothing reached the server: give the text back so it can be fixed and sent again
  if (current.taskId === null && current.state === "error" && ui.prompt.value === "") ui.prompt.value = text;
}

async function onCancel() {
  const current = run;
  if (!current?.taskId || current.settled) return;
  ui.cancel.disabled = true;
  log.add("cancel", null, `CancelTask ${current.taskId}`);
  try {
    const task = await call("CancelTask", { id: current.taskId });
    // the canceled status arrives on the stream; this only records that the server accepted the request
    log.add("cancel", null, `accepted: task is ${stateName(task?.status?.state)}`);
  } catch (err) {
    showError(`Cancel failed: ${err.message}`);
    ui.cancel.disabled = current.settled;
  }
}

/** Shows the task's whole context as the conversation; a task still running is watched to its end. */
async function openTask(taskId) {
  showState("opening");
  let task;
  try {
    task = await call("GetTask", { id: taskId });
  } catch (err) {
    showError(`Could not open task ${taskId}: ${err.message}`);
    showState(run?.settled === false ? runStateName(run) : "idle");
    return;
  }
  let turns = [task];
  try {
    const listed = await call("ListTasks", { contextId: task.contextId, pageSize: 100, includeArtifacts: true });
    if (listed.tasks?.some((t) => t.id === task.id)) turns = listed.tasks;
  } catch {
    // the one task is enough to show
  }
  // the turns of one conversation follow each other: the order of their last updates is theirs
  turns.sort((a, b) => Date.parse(a.status.timestamp) - Date.parse(b.status.timestamp));
  ui.chat.checked = true;
  newConversation();
  adoptContext(task.contextId);
  const skill = skillOf(task);
  if (skill && skills.some((s) => s.id === skill) && ui.skill.value !== skill) {
    ui.skill.value = skill;
    onSkillChange();
  }
  const shown = new Map(turns.map((t) => [t.id, showTask(t)]));
  const live = [task, ...turns.slice().reverse()].find((t) => !SETTLED.has(t.status.state));
  const last = turns.at(-1);
  conversation.taskId = INTERRUPTED.has(last.status.state) ? last.id : null;
  tasks.markCurrent(task.id);
  if (!live) {
    ui.taskId.textContent = task.id;
    showState(stateName(task.status.state));
    shown.get(task.id).li.scrollIntoView({ block: "nearest" });
    return;
  }
  const current = startRun(shown.get(live.id), "connecting");
  log.add("watch", null, `SubscribeToTask ${live.id}`);
  await current.follow(rpc("SubscribeToTask", { id: live.id }));
}

function showTask(task) {
  for (const m of task.history ?? []) if (m.role === "ROLE_USER") transcript.addUser(partsText(m.parts));
  const turn = transcript.addAgent(skillOf(task) ?? "agent");
  turn.setTask(task.id);
  turn.setText((task.artifacts ?? []).map((a) => partsText(a.parts)).join("\n\n"));
  turn.setState(stateName(task.status.state));
  turn.setStats(statsOf(task.metadata, null));
  if (task.status.message) turn.setNote(partsText(task.status.message.parts));
  return turn;
}

// ---------------------------------------------------------------------------------------------- view

function showState(name) {
  ui.state.textContent = name;
  ui.state.dataset.state = name;
}

function showError(message) {
  ui.error.textContent = message ?? "";
  ui.error.hidden = !message;
}

function showNotice(message) {
  ui.notice.textContent = message ?? "";
  ui.notice.hidden = !message;
}

// ---------------------------------------------------------------------------------------------- form

function selectedSkill() {
  return skills.find((s) => s.id === ui.skill.value);
}

function onSkillChange() {
  const skill = selectedSkill();
  ui.skillName.textContent = skill?.name ?? skill?.id ?? "this skill";
  ui.skillDescription.textContent = skill?.description ?? "";
  ui.about.hidden = !skill?.description;
  ui.inference.hidden = skill?.id !== "inference";
  ui.echo.hidden = skill?.id !== "echo";
  ui.examples.replaceChildren(...(skill?.examples ?? []).slice(0, 3).map((example) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    button.textContent = example;
    button.title = "Put this example in the message box";
    button.addEventListener("click", () => {
      ui.prompt.value = example;
      ui.prompt.focus();
    });
    return button;
  }));
}

/** Message metadata for the chosen skill; empty fields are left out so the skill's defaults apply. */
function collectMetadata() {
  const metadata = { skill: ui.skill.value };
  const numbers = ui.skill.value === "echo" ? [["delay_ms", ui.delay]]
    : ui.skill.value === "inference" ? [["max_tokens", ui.maxTokens], ["temperature", ui.temperature]] : [];
  for (const [key, input] of numbers) {
    if (input.validity.badInput) throw new Fatal(`${key} is not a number`);
    if (input.value !== "") metadata[key] = Number(input.value);
  }
  if (ui.skill.value === "inference" && !ui.modelField.hidden && ui.model.value) metadata.model = ui.model.value;
  return metadata;
}

async function loadModels() {
  try {
    const response = await fetch("v1/models", { headers: { Accept: "application/json" } });
    if (response.status !== 200) return; // no model-serving endpoint here: the selector stays hidden
    const body = await response.json();
    const models = (body.data ?? []).filter((m) => m.id);
    // "" sends no `model`: the skill answers with its own default, never a model the user did not pick
    const choices = models.map((m) => new Option(m.state ? `${m.id} (${m.state})` : m.id, m.id));
    ui.model.replaceChildren(new Option("server default", ""), ...choices);
    ui.modelField.hidden = models.length === 0;
  } catch {
    ui.modelField.hidden = true;
  }
}

/** The server needs an API key: the one this tab has, else one the user gives, checked with a cheap call. */
async function unlock() {
  let reason = null;
  useStoredKey();
  for (;;) {
    if (!authHeaders().Authorization) await askForKey(ui.keyForm, reason);
    try {
      await call("ListTasks", { pageSize: 1 });
      return;
    } catch (err) {
      if (!/HTTP 40[13]/.test(err.message)) return; // not the key's fault: the page says so where it happens
      forgetKey();
      reason = `That key was refused (${err.message.replace(/^HTTP \d+ [^:]*: /, "")}). Try another.`;
    }
  }
}

async function init() {
  ui.form.addEventListener("submit", onSend);
  ui.cancel.addEventListener("click", onCancel);
  ui.skill.addEventListener("change", onSkillChange);
  ui.newChat.addEventListener("click", () => {
    newConversation();
    ui.prompt.focus();
  });
  ui.chat.addEventListener("change", showContext);
  ui.prompt.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.isComposing || e.shiftKey || e.altKey) return;
    e.preventDefault();
    ui.form.requestSubmit();
  });
  showContext();
  let card;
  try {
    const response = await fetch(".well-known/agent-card.json", { headers: { ...A2A_HEADERS, Accept: "application/json" } });
    if (!response.ok) throw new Error(await httpErrorText(response));
    card = await response.json();
  } catch (err) {
    ui.agent.textContent = "No agent card.";
    showError(`Could not load the agent card: ${err.message}`);
    return;
  }
  const about = `${card.name ?? "agent"} ${card.version ?? ""} — ${card.description ?? ""}`;
  ui.agent.textContent = about;
  ui.agent.title = about;
  if (card.securitySchemes || card.securityRequirements) await unlock();
  skills = card.skills ?? [];
  if (!skills.length) {
    showError("The agent card lists no skills.");
    return;
  }
  ui.skill.replaceChildren(...skills.map((s) => new Option(s.name ? `${s.name} (${s.id})` : s.id, s.id)));
  await loadModels();
  onSkillChange();
  ui.skill.disabled = false;
  ui.send.disabled = false;
  document.body.dataset.ready = "true";
  tasks.start();
}

init();
