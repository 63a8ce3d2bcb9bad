// The live list of tasks: seeded by ListTasks, kept current by the server's firehose (GET a2a/events,
// read with EventSource), and by this page's own runs, so it still lists them where there is no firehose.
//
// A firehose frame is `id: <global cursor>` + a bare 1.0 StreamResponse (statusUpdate / artifactUpdate /
// message) naming its taskId; the skill is not in the frames, so GetTask looks it up for the rows shown.
// EventSource sends Last-Event-ID itself when it reconnects after a drop. A server without the firehose
// answers 404: EventSource gives up (CLOSED), a fetch tells why, and the list says it is not live.

import { authHeaders } from "./auth.js";
import { FetchEventSource } from "./feed.js";
import { call, INTERRUPTED, SETTLED, skillOf, stateName } from "./wire.js";

const FEED = "a2a/events";
const SHOWN = 50; // rows in the list
const KEPT = 200; // rows remembered (a replayed log passes many tasks by)
const LOOKUPS = 2; // GetTask calls in flight for skills
const RETRY_MS = [1000, 2000, 5000, 10_000, 30_000];

export class TaskList {
  #rows = new Map(); // taskId -> {id, contextId, state, created, skill, li, ...}
  #current = null;
  #lookups = 0;
  #renderTimer = null;
  #source = null;
  #retries = 0;

  constructor({ panel, list, note, live, onOpen }) {
    Object.assign(this, { panel, list, note, live, onOpen });
  }

  async start() {
    await this.#seed();
    this.#connect();
    setInterval(() => this.#ages(), 1000);
  }

  /** A task of this page's own: what it knows ahead of the firehose (the skill, above all). */
  track({ id, contextId, state, skill }) {
    this.#upsert({ id, contextId, state, skill, at: Date.now() });
  }

  markCurrent(taskId) {
    this.#current = taskId;
    for (const row of this.#rows.values()) {
      if (row.li) row.button.setAttribute("aria-current", String(row.id === taskId));
    }
  }

  async #seed() {
    try {
      const result = await call("ListTasks", { pageSize: SHOWN, historyLength: 1 });
      for (const task of result.tasks ?? []) {
        this.#upsert({
          id: task.id, contextId: task.contextId, state: task.status?.state, skill: skillOf(task),
          at: Date.parse(task.status?.timestamp),
        });
      }
    } catch (err) {
      this.#say(`Could not list the tasks: ${err.message}`);
    }
    this.#render();
  }

  #connect() {
    this.#show("connecting", "connecting…");
    // new events only: the list starts from ListTasks, and a replay of every stored token would be wasted work
    // with an API key: fetch (EventSource cannot send the Authorization header)
    const key = authHeaders();
    const source = key.Authorization ? new FetchEventSource(`${FEED}?from=now`, key) : new EventSource(`${FEED}?from=now`);
    this.#source = source;
    source.addEventListener("open", () => {
      this.#retries = 0;
      this.#show("live", "live");
      this.#say(null);
    });
    source.addEventListener("message", (event) => this.#frame(event.data));
    source.addEventListener("error", () => {
      if (source !== this.#source) return;
      // CONNECTING: the browser retries by itself (with Last-Event-ID); CLOSED: it gave up for good
      if (source.readyState === 2) this.#closed(); // CLOSED, in both kinds of source
      else this.#show("connecting", "reconnecting…");
    });
  }

  async #closed() {
    this.#source = null;
    const status = await probe(FEED);
    if (status === 404 || status === 405) {
      this.#show("absent", "not live");
      this.#say(`This server has no live task feed (GET /${FEED} answered ${status}): the list shows the tasks ` +
        "listed when the page loaded and the ones sent from this page.");
      return;
    }
    const wait = RETRY_MS[Math.min(this.#retries, RETRY_MS.length - 1)];
    this.#retries += 1;
    this.#show("retrying", "not live");
    this.#say(`The live task feed is unavailable (${status ? `HTTP ${status}` : "no connection"}); ` +
      `trying again in ${wait / 1000} s.`);
    setTimeout(() => this.#connect(), wait);
  }

  #frame(data) {
    let item;
    try {
      item = JSON.parse(data);
    } catch {
      return; // not ours to judge: the feed's own tests check its frames
    }
    const status = item.statusUpdate;
    const update = status ?? item.artifactUpdate ?? item.message;
    if (!update?.taskId) return;
    this.#upsert({
      id: update.taskId, contextId: update.contextId, state: status?.status?.state,
      at: Date.parse(status?.status?.timestamp),
    });
  }

  #upsert({ id, contextId, state, skill, at }) {
    const when = Number.isFinite(at) ? at : Date.now();
    let row = this.#rows.get(id);
    if (!row) {
      row = { id, contextId: null, state: null, skill: null, created: when, looked: false };
      this.#rows.set(id, row);
    }
    if (contextId) row.contextId = contextId;
    if (skill) row.skill = skill;
    row.created = Math.min(row.created, when);
    // a terminal state is final: a late event from a slower stream must not bring the row back to life
    const over = row.state && SETTLED.has(row.state) && !INTERRUPTED.has(row.state);
    if (state && !over) row.state = state;
    if (!row.state) row.state = "TASK_STATE_WORKING"; // an artifact before any status: it is running
    this.#schedule();
  }

  #schedule() {
    this.#renderTimer ??= setTimeout(() => {
      this.#renderTimer = null;
      this.#render();
    }, 50);
  }

  #render() {
    const rows = [...this.#rows.values()].sort((a, b) => b.created - a.created);
    for (const old of rows.slice(KEPT)) this.#rows.delete(old.id);
    const shown = rows.slice(0, SHOWN);
    for (const row of shown) this.#draw(row);
    const wanted = shown.map((row) => row.li);
    const same = wanted.length === this.list.children.length && wanted.every((li, i) => this.list.children[i] === li);
    if (!same) this.list.replaceChildren(...wanted);
    this.panel.dataset.count = String(shown.length);
    this.#lookUp(shown);
  }

  #draw(row) {
    if (!row.li) {
      row.li = document.createElement("li");
      row.button = document.createElement("button");
      row.button.type = "button";
      row.button.className = "task-row";
      row.badge = span("badge");
      row.skillEl = span("skill");
      row.idEl = document.createElement("code");
      row.ageEl = span("age");
      row.button.append(row.badge, row.skillEl, row.idEl, row.ageEl);
      row.button.addEventListener("click", () => this.onOpen(row.id));
      row.li.append(row.button);
      row.li.dataset.taskId = row.id;
      row.idEl.textContent = row.id.slice(0, 8);
      row.button.setAttribute("aria-current", String(row.id === this.#current));
    }
    const state = stateName(row.state);
    if (row.li.dataset.state !== state) {
      row.li.dataset.state = state;
      row.badge.dataset.state = state;
      row.badge.textContent = state;
    }
    const skill = row.skill ?? (row.looked ? "?" : "…");
    if (row.skillEl.textContent !== skill) row.skillEl.textContent = skill;
    row.li.dataset.skill = row.skill ?? "";
    row.ageEl.textContent = age(Date.now() - row.created);
    row.button.title = `task ${row.id}, ${state}${row.contextId ? `, context ${row.contextId}` : ""}: click to open`;
  }

  #ages() {
    const now = Date.now();
    for (const row of this.#rows.values()) if (row.li?.isConnected) row.ageEl.textContent = age(now - row.created);
  }

  /** The skill of the rows shown that nobody has named yet, a few GetTask calls at a time. */
  #lookUp(rows) {
    for (const row of rows) {
      if (this.#lookups >= LOOKUPS) return;
      if (row.skill || row.looked) continue;
      row.looked = true;
      this.#lookups += 1;
      call("GetTask", { id: row.id, historyLength: 1 })
        .then((task) => {
          row.skill = skillOf(task);
          row.contextId ??= task.contextId;
        })
        .catch(() => {}) // gone from the store, or not ours to see: the row says "?"
        .finally(() => {
          this.#lookups -= 1;
          this.#schedule();
        });
    }
  }

  #show(live, text) {
    this.live.dataset.live = live;
    this.live.textContent = text;
  }

  #say(text) {
    this.note.textContent = text ?? "";
    this.note.hidden = !text;
  }
}

/** The HTTP status of GET `url`, read from the headers only (the body of a stream is never read). */
async function probe(url) {
  const controller = new AbortController();
  try {
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    const response = await fetch(url, { headers, signal: controller.signal });
    return response.status;
  } catch {
    return null;
  } finally {
    controller.abort();
  }
}

function age(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

function span(className) {
  const el = document.createElement("span");
  el.className = className;
  return el;
}
