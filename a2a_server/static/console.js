// The a2a-server web console. Plain ES module, no dependencies, served as is.
//
// One send is one A2A 1.0 `SendStreamingMessage` (POST a2a, header A2A-Version: 1.0) whose SSE answer is
// read with fetch + ReadableStream. Every frame's `id:` is kept; when the stream drops before the task
// settles, the console resumes with `SubscribeToTask` and `Last-Event-ID: <last id>`, which replays
// exactly the events after it. Consecutive failed resumes back off and are bounded.

const A2A_HEADERS = { "A2A-Version": "1.0" };
// A 1.0 stream closes after a terminal or interrupted state; it has no `final` flag.
const SETTLED = new Set([
  "TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED",
  "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED",
]);
const RESUME_ATTEMPTS = 5;     // consecutive failures; any frame received resets the count
const RESUME_BASE_MS = 250;    // 250, 500, 1000, 2000, 4000
const RESUME_MAX_MS = 4000;
const MAX_LOG_ENTRIES = 300;

const $ = (id) => document.getElementById(id);
const ui = {
  agent: $("agent"), form: $("send-form"), skill: $("skill"), skillDescription: $("skill-description"),
  inference: $("inference-params"), modelField: $("model-field"), model: $("model"),
  maxTokens: $("max-tokens"), temperature: $("temperature"), echo: $("echo-params"), delay: $("delay-ms"),
  prompt: $("prompt"), send: $("send"), cancel: $("cancel"), state: $("state"), taskId: $("task-id"),
  usage: $("usage"), notice: $("notice"), error: $("error"), output: $("output"), events: $("events"),
};

/** An error that ends the run: resuming cannot help (HTTP 4xx, a JSON-RPC error, a broken frame). */
class Fatal extends Error {}

let skills = [];
let run = null; // the current send: see newRun()
let rpcIds = 0;

// ---------------------------------------------------------------------------------------------- SSE

/** Splits a text stream into SSE frames ({id, event, data}); comments (`: ping`) are dropped. */
class SseParser {
  #buffer = "";
  #data = [];
  #id = null;
  #event = "";

  push(chunk) {
    this.#buffer += chunk;
    // A chunk may end between the \r and the \n of one line break: keep a trailing \r for the next one.
    const end = this.#buffer.endsWith("\r") ? this.#buffer.length - 1 : this.#buffer.length;
    const lines = this.#buffer.slice(0, end).split(/\r\n|\r|\n/);
    this.#buffer = lines.pop() + this.#buffer.slice(end);
    const frames = [];
    for (const line of lines) {
      if (line === "") {
        if (this.#data.length || this.#id !== null) {
          frames.push({ id: this.#id, event: this.#event, data: this.#data.join("\n") });
        }
        this.#data = [];
        this.#id = null;
        this.#event = "";
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.#data.push(value);
      else if (field === "id") this.#id = value;
      else if (field === "event") this.#event = value;
    }
    return frames;
  }
}

// ---------------------------------------------------------------------------------------------- wire

function rpc(method, params) {
  rpcIds += 1;
  return { jsonrpc: "2.0", id: rpcIds, method, params };
}

function uid() {
  // crypto.randomUUID() exists only in secure contexts; the console may be served over plain http.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function rpcErrorText(error) {
  return `JSON-RPC error ${error.code}: ${error.message}`;
}

async function httpErrorText(response) {
  const text = await response.text().catch(() => "");
  let detail = text.trim().slice(0, 500);
  try {
    const body = JSON.parse(text);
    if (body?.error?.message) detail = rpcErrorText(body.error);
  } catch {
    // not JSON: show the text as it came
  }
  return `HTTP ${response.status} ${response.statusText}${detail ? ": " + detail : ""}`;
}

/** A non-streaming JSON-RPC call in the 1.0 dialect; returns the JSON-RPC response. */
async function call(method, params) {
  const response = await fetch("a2a", {
    method: "POST",
    headers: { ...A2A_HEADERS, "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(rpc(method, params)),
    cache: "no-store",
  });
  if (!response.ok) throw new Error(await httpErrorText(response));
  return response.json();
}

// ---------------------------------------------------------------------------------------------- a run

function newRun() {
  return {
    taskId: null,
    lastEventId: null, // the `id:` of the last frame seen, for Last-Event-ID
    state: null,
    settled: false,
    artifacts: new Map(), // artifactId -> text so far, in arrival order
    artifactLog: null, // the event-log entry that consecutive chunks of one artifact update in place
    controller: new AbortController(),
  };
}

/** Opens one stream and handles its frames; returns why it ended, or throws Fatal. */
async function stream(current, body, extraHeaders) {
  let progressed = false;
  try {
    const response = await fetch("a2a", {
      method: "POST",
      headers: {
        ...A2A_HEADERS, "Content-Type": "application/json", Accept: "text/event-stream", ...extraHeaders,
      },
      body: JSON.stringify(body),
      cache: "no-store",
      signal: current.controller.signal,
    });
    if (response.status >= 500) return { progressed, reason: await httpErrorText(response) };
    if (!response.ok) throw new Fatal(await httpErrorText(response));
    const type = response.headers.get("content-type") || "";
    if (!type.startsWith("text/event-stream")) {
      // errors before the stream starts come back as one JSON-RPC response, not as a stream
      const answer = await response.json().catch(() => null);
      throw new Fatal(answer?.error ? rpcErrorText(answer.error) : `Expected an event stream, got ${type || "nothing"}`);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { progressed, reason: "the stream closed before the task finished" };
      for (const frame of parser.push(value)) {
        if (frame.id !== null) current.lastEventId = frame.id;
        if (!frame.data) continue;
        handleFrame(current, frame);
        progressed = true;
        if (current.settled) {
          reader.cancel().catch(() => {});
          return { progressed };
        }
      }
    }
  } catch (err) {
    if (err instanceof Fatal || current.controller.signal.aborted) throw err;
    return { progressed, reason: `connection lost (${err.message || err})` };
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** Streams `body`, then resumes with SubscribeToTask + Last-Event-ID until the task settles. */
async function follow(current, body) {
  let request = body;
  let headers = {};
  let failures = 0;
  for (;;) {
    let outcome;
    try {
      outcome = await stream(current, request, headers);
    } catch (err) {
      if (current.controller.signal.aborted) return;
      fail(current, err.message);
      return;
    }
    if (current.settled || current.controller.signal.aborted) return;
    if (current.taskId === null || current.lastEventId === null) {
      fail(current, outcome.reason); // nothing to resume: the task never showed up
      return;
    }
    failures = outcome.progressed ? 1 : failures + 1;
    if (failures > RESUME_ATTEMPTS) {
      fail(current, `Gave up after ${RESUME_ATTEMPTS} attempts to resume task ${current.taskId}: ${outcome.reason}`);
      return;
    }
    const wait = Math.min(RESUME_MAX_MS, RESUME_BASE_MS * 2 ** (failures - 1));
    const text = `Stream dropped: ${outcome.reason}. Resuming after event ${current.lastEventId} ` +
      `in ${wait} ms (attempt ${failures} of ${RESUME_ATTEMPTS})…`;
    showNotice(text);
    logEvent("resume", current.lastEventId, text);
    await sleep(wait, current.controller.signal);
    if (current.controller.signal.aborted) return;
    request = rpc("SubscribeToTask", { id: current.taskId });
    headers = { "Last-Event-ID": current.lastEventId };
  }
}

function handleFrame(current, frame) {
  let message;
  try {
    message = JSON.parse(frame.data);
  } catch {
    throw new Fatal(`Unreadable event ${frame.id ?? ""}: ${frame.data.slice(0, 200)}`);
  }
  if (message.error) throw new Fatal(rpcErrorText(message.error));
  const result = message.result ?? {};
  if (current.state !== null) showNotice(null); // a frame after a resume: the notice is stale
  if (result.task) onTask(current, result.task, frame.id);
  else if (result.statusUpdate) onStatus(current, result.statusUpdate, frame.id);
  else if (result.artifactUpdate) onArtifact(current, result.artifactUpdate, frame.id);
  else if (result.message) onMessage(current, result.message, frame.id);
  else logEvent("unknown", frame.id, JSON.stringify(result).slice(0, 200));
}

function onTask(current, task, eventId) {
  current.taskId = task.id;
  ui.taskId.textContent = task.id;
  for (const artifact of task.artifacts ?? []) current.artifacts.set(artifact.artifactId, partsText(artifact.parts));
  if (task.artifacts?.length) renderOutput(current);
  logEvent("task", eventId, `task ${task.id} ${stateName(task.status.state)}`);
  setState(current, task.status.state);
  ui.cancel.disabled = current.settled;
}

function onStatus(current, update, eventId) {
  const { status, metadata } = update;
  const said = status.message ? partsText(status.message.parts) : "";
  logEvent("status", eventId, stateName(status.state) + (said ? `: ${said}` : ""));
  if (metadata?.usage) showUsage(metadata.usage, metadata.model);
  if (said && ["TASK_STATE_FAILED", "TASK_STATE_REJECTED"].includes(status.state)) {
    showError(`Task ${stateName(status.state)}: ${said}`);
  }
  setState(current, status.state);
}

function onArtifact(current, update, eventId) {
  const { artifact } = update;
  const text = partsText(artifact.parts);
  const before = update.append ? current.artifacts.get(artifact.artifactId) ?? "" : "";
  current.artifacts.set(artifact.artifactId, before + text);
  renderOutput(current);
  // One entry per artifact, updated per chunk: a token-per-event stream would flood the log otherwise.
  let entry = current.artifactLog;
  if (!(entry && entry.id === artifact.artifactId && ui.events.lastElementChild === entry.li)) {
    entry = { id: artifact.artifactId, chunks: 0, li: logEvent("artifact", eventId, "") };
    current.artifactLog = entry;
  }
  entry.chunks += 1;
  const total = current.artifacts.get(artifact.artifactId).length;
  const last = update.lastChunk ? ", last chunk" : "";
  setLogText(entry.li, eventId, `${artifact.name ?? artifact.artifactId}: ${entry.chunks} chunk(s), ${total} chars${last}`);
}

function onMessage(current, message, eventId) {
  // a direct reply is the whole stream: there is no task to follow
  current.artifacts.set("message", partsText(message.parts));
  renderOutput(current);
  logEvent("message", eventId, `reply from ${message.role}`);
  current.state = "message";
  showState("message");
  settle(current);
}

function partsText(parts) {
  return (parts ?? []).map((p) => {
    if (typeof p.text === "string") return p.text;
    if (p.data !== undefined) return JSON.stringify(p.data);
    return `[${p.filename ?? p.mediaType ?? "file"}]`;
  }).join("");
}

function stateName(wireState) {
  return String(wireState).replace(/^TASK_STATE_/, "").toLowerCase().replaceAll("_", "-");
}

function setState(current, wireState) {
  current.state = wireState;
  showState(stateName(wireState));
  if (SETTLED.has(wireState)) settle(current);
}

function settle(current) {
  current.settled = true;
  if (current !== run) return;
  showNotice(null);
  ui.send.disabled = false;
  ui.cancel.disabled = true;
  ui.output.setAttribute("aria-busy", "false");
}

function fail(current, message) {
  if (current !== run) return;
  showError(message);
  showState("error");
  logEvent("error", null, message);
  settle(current);
}

// ---------------------------------------------------------------------------------------------- view

function showState(name) {
  ui.state.textContent = name;
  ui.state.dataset.state = name;
}

function showUsage(usage, model) {
  const parts = Object.entries(usage).map(([k, v]) => `${k} ${v}`);
  if (model) parts.push(`model ${model}`);
  ui.usage.textContent = parts.join(" · ");
}

function showError(message) {
  ui.error.textContent = message ?? "";
  ui.error.hidden = !message;
}

function showNotice(message) {
  ui.notice.textContent = message ?? "";
  ui.notice.hidden = !message;
}

function renderOutput(current) {
  if (current !== run) return;
  const out = ui.output;
  const atBottom = out.scrollHeight - out.scrollTop - out.clientHeight < 24;
  out.textContent = [...current.artifacts.values()].join("\n\n");
  if (atBottom) out.scrollTop = out.scrollHeight;
}

function logEvent(kind, eventId, text) {
  const li = document.createElement("li");
  li.dataset.kind = kind;
  const time = document.createElement("time");
  time.textContent = new Date().toISOString().slice(11, 23);
  const label = document.createElement("span");
  label.className = "kind";
  label.textContent = kind;
  const body = document.createElement("span");
  body.className = "text";
  li.append(time, " ", label, " ", body);
  setLogText(li, eventId, text);
  ui.events.append(li);
  while (ui.events.childElementCount > MAX_LOG_ENTRIES) ui.events.firstElementChild.remove();
  ui.events.scrollTop = ui.events.scrollHeight;
  return li;
}

function setLogText(li, eventId, text) {
  let shown = eventId ?? "";
  // the server's ids are opaque cursors (`<task id>:<n>` today); the task id is shown once, above
  const prefix = run?.taskId ? `${run.taskId}:` : null;
  if (prefix && shown.startsWith(prefix)) shown = shown.slice(prefix.length);
  li.querySelector(".text").textContent = (shown ? `#${shown} ` : "") + text;
}

// ---------------------------------------------------------------------------------------------- form

function selectedSkill() {
  return skills.find((s) => s.id === ui.skill.value);
}

function onSkillChange() {
  const skill = selectedSkill();
  ui.skillDescription.textContent = skill?.description ?? "";
  ui.inference.hidden = skill?.id !== "inference";
  ui.echo.hidden = skill?.id !== "echo";
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

function startRun() {
  run?.controller.abort();
  run = newRun();
  showError(null);
  showNotice(null);
  showState("sending");
  ui.taskId.textContent = "—";
  ui.usage.textContent = "—";
  ui.output.textContent = "";
  ui.output.setAttribute("aria-busy", "true");
  ui.events.replaceChildren();
  ui.send.disabled = true;
  ui.cancel.disabled = true;
  return run;
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
  const current = startRun();
  const message = { messageId: uid(), role: "ROLE_USER", parts: [{ text }], metadata };
  logEvent("send", null, `SendStreamingMessage to ${metadata.skill}`);
  await follow(current, rpc("SendStreamingMessage", { message }));
}

async function onCancel() {
  const current = run;
  if (!current?.taskId || current.settled) return;
  ui.cancel.disabled = true;
  logEvent("cancel", null, `CancelTask ${current.taskId}`);
  try {
    const answer = await call("CancelTask", { id: current.taskId });
    if (answer.error) throw new Error(rpcErrorText(answer.error));
    // the canceled status arrives on the stream; this only records that the server accepted the request
    logEvent("cancel", null, `accepted: task is ${stateName(answer.result?.status?.state)}`);
  } catch (err) {
    showError(`Cancel failed: ${err.message}`);
    ui.cancel.disabled = current.settled;
  }
}

async function loadModels() {
  try {
    const response = await fetch("v1/models", { headers: { Accept: "application/json" } });
    if (response.status !== 200) return; // no model-serving endpoint here: the selector stays hidden
    const body = await response.json();
    const ids = (body.data ?? []).map((m) => m.id).filter(Boolean);
    ui.model.replaceChildren(...ids.map((id) => new Option(id, id)));
    ui.modelField.hidden = ids.length === 0;
  } catch {
    ui.modelField.hidden = true;
  }
}

async function init() {
  ui.form.addEventListener("submit", onSend);
  ui.cancel.addEventListener("click", onCancel);
  ui.skill.addEventListener("change", onSkillChange);
  ui.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) ui.form.requestSubmit();
  });
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
  ui.agent.textContent = `${card.name ?? "agent"} ${card.version ?? ""} — ${card.description ?? ""}`;
  skills = card.skills ?? [];
  if (!skills.length) {
    showError("The agent card lists no skills.");
    return;
  }
  ui.skill.replaceChildren(...skills.map((s) => new Option(`${s.name ?? s.id} (${s.id})`, s.id)));
  await loadModels();
  onSkillChange();
  ui.skill.disabled = false;
  ui.send.disabled = false;
  document.body.dataset.ready = "true";
}

init();
