// Following one task to the end: a send (SendStreamingMessage) or a watch (SubscribeToTask).
//
// The SSE answer is read with fetch + ReadableStream. Every frame's `id:` is kept; when the stream drops
// before the task settles, the run resumes with `SubscribeToTask` and `Last-Event-ID: <last id>`, which
// replays exactly the events after it. Consecutive failed resumes back off and are bounded.
//
// A run knows nothing of the page: it tells its `view` what happened (see the calls to this.view below).

import { SseParser } from "./sse.js";
import {
  A2A_HEADERS, Fatal, SETTLED, httpErrorText, partsText, rpc, rpcErrorText, stateName,
} from "./wire.js";

const RESUME_ATTEMPTS = 5;     // consecutive failures; any frame received resets the count
const RESUME_BASE_MS = 250;    // 250, 500, 1000, 2000, 4000
const RESUME_MAX_MS = 4000;

export class Run {
  taskId = null;
  contextId = null;
  lastEventId = null; // the `id:` of the last frame seen, for Last-Event-ID
  state = null; // the wire state, or "message" / "error"
  settled = false;
  artifacts = new Map(); // artifactId -> text so far, in arrival order
  metadata = {}; // the status metadata so far (the final one carries usage and timings)
  statusText = ""; // what the last status message said
  chunks = 0;
  startedAt = performance.now();
  firstChunkAt = null; // performance.now() of the first artifact chunk
  endedAt = null;
  controller = new AbortController();
  #artifactLog = null; // the log entry that consecutive chunks of one artifact update in place

  constructor(view) {
    this.view = view;
  }

  get text() {
    return [...this.artifacts.values()].join("\n\n");
  }

  get aborted() {
    return this.controller.signal.aborted;
  }

  abort() {
    this.controller.abort();
  }

  /** Streams `body`, then resumes with SubscribeToTask + Last-Event-ID until the task settles. */
  async follow(body) {
    let request = body;
    let headers = {};
    let failures = 0;
    for (;;) {
      let outcome;
      try {
        outcome = await this.#stream(request, headers);
      } catch (err) {
        if (!this.aborted) this.#fail(err.message);
        return;
      }
      if (this.settled || this.aborted) return;
      if (this.taskId === null || this.lastEventId === null) {
        this.#fail(outcome.reason); // nothing to resume: the task never showed up
        return;
      }
      failures = outcome.progressed ? 1 : failures + 1;
      if (failures > RESUME_ATTEMPTS) {
        this.#fail(`Gave up after ${RESUME_ATTEMPTS} attempts to resume task ${this.taskId}: ${outcome.reason}`);
        return;
      }
      const wait = Math.min(RESUME_MAX_MS, RESUME_BASE_MS * 2 ** (failures - 1));
      const text = `Stream dropped: ${outcome.reason}. Resuming after event ${this.lastEventId} ` +
        `in ${wait} ms (attempt ${failures} of ${RESUME_ATTEMPTS})…`;
      this.view.notice(this, text);
      this.view.event(this, "resume", this.lastEventId, text);
      await sleep(wait, this.controller.signal);
      if (this.aborted) return;
      request = rpc("SubscribeToTask", { id: this.taskId });
      headers = { "Last-Event-ID": this.lastEventId };
    }
  }

  /** Opens one stream and handles its frames; returns why it ended, or throws Fatal. */
  async #stream(body, extraHeaders) {
    let progressed = false;
    try {
      const response = await fetch("a2a", {
        method: "POST",
        headers: {
          ...A2A_HEADERS, "Content-Type": "application/json", Accept: "text/event-stream", ...extraHeaders,
        },
        body: JSON.stringify(body),
        cache: "no-store",
        signal: this.controller.signal,
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
          if (frame.id !== null) this.lastEventId = frame.id;
          if (!frame.data) continue;
          this.#handle(frame);
          progressed = true;
          if (this.settled) {
            reader.cancel().catch(() => {});
            return { progressed };
          }
        }
        this.view.changed(this); // once per read: a read often holds many tokens
      }
    } catch (err) {
      if (err instanceof Fatal || this.aborted) throw err;
      return { progressed, reason: `connection lost (${err.message || err})` };
    }
  }

  #handle(frame) {
    let message;
    try {
      message = JSON.parse(frame.data);
    } catch {
      throw new Fatal(`Unreadable event ${frame.id ?? ""}: ${frame.data.slice(0, 200)}`);
    }
    if (message.error) throw new Fatal(rpcErrorText(message.error));
    const result = message.result ?? {};
    if (this.state !== null) this.view.notice(this, null); // a frame after a resume: the notice is stale
    if (result.task) this.#onTask(result.task, frame.id);
    else if (result.statusUpdate) this.#onStatus(result.statusUpdate, frame.id);
    else if (result.artifactUpdate) this.#onArtifact(result.artifactUpdate, frame.id);
    else if (result.message) this.#onMessage(result.message, frame.id);
    else this.view.event(this, "unknown", frame.id, JSON.stringify(result).slice(0, 200));
  }

  #onTask(task, eventId) {
    this.taskId = task.id;
    this.contextId = task.contextId;
    for (const artifact of task.artifacts ?? []) this.artifacts.set(artifact.artifactId, partsText(artifact.parts));
    if (task.metadata) Object.assign(this.metadata, task.metadata);
    this.view.event(this, "task", eventId, `task ${task.id} ${stateName(task.status.state)}`);
    this.view.task(this, task);
    this.#setState(task.status.state);
  }

  #onStatus(update, eventId) {
    const { status, metadata } = update;
    this.contextId ??= update.contextId;
    const said = status.message ? partsText(status.message.parts) : "";
    if (said) this.statusText = said;
    if (metadata) Object.assign(this.metadata, metadata);
    this.view.event(this, "status", eventId, stateName(status.state) + (said ? `: ${said}` : ""));
    if (said && ["TASK_STATE_FAILED", "TASK_STATE_REJECTED"].includes(status.state)) {
      this.view.error(this, `Task ${stateName(status.state)}: ${said}`);
    }
    this.#setState(status.state);
  }

  #onArtifact(update, eventId) {
    const { artifact } = update;
    const before = update.append ? this.artifacts.get(artifact.artifactId) ?? "" : "";
    this.artifacts.set(artifact.artifactId, before + partsText(artifact.parts));
    this.chunks += 1;
    this.firstChunkAt ??= performance.now();
    // One entry per artifact, updated per chunk: a token-per-event stream would flood the log otherwise.
    let entry = this.#artifactLog;
    if (!(entry && entry.id === artifact.artifactId && this.view.isLastEvent(entry.handle))) {
      entry = { id: artifact.artifactId, chunks: 0, handle: this.view.event(this, "artifact", eventId, "") };
      this.#artifactLog = entry;
    }
    entry.chunks += 1;
    const total = this.artifacts.get(artifact.artifactId).length;
    const last = update.lastChunk ? ", last chunk" : "";
    this.view.updateEvent(this, entry.handle, eventId,
      `${artifact.name ?? artifact.artifactId}: ${entry.chunks} chunk(s), ${total} chars${last}`);
  }

  #onMessage(message, eventId) {
    // a direct reply is the whole stream: there is no task to follow
    this.contextId ??= message.contextId ?? null;
    this.artifacts.set("message", partsText(message.parts));
    this.firstChunkAt ??= performance.now();
    this.view.event(this, "message", eventId, `reply from ${message.role}`);
    this.state = "message";
    this.#settle();
  }

  #setState(wireState) {
    this.state = wireState;
    if (SETTLED.has(wireState)) this.#settle();
    else this.view.changed(this);
  }

  #settle() {
    this.settled = true;
    this.endedAt = performance.now();
    this.view.settled(this);
  }

  #fail(message) {
    this.state = "error";
    this.view.error(this, message);
    this.view.event(this, "error", null, message);
    this.#settle();
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
