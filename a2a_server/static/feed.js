// EventSource cannot send an Authorization header: with a key, the task feed is read with fetch instead.
// The same small surface as EventSource (open / message / error events, readyState, close) and the same
// resumption: after a drop it reconnects with Last-Event-ID; an HTTP error closes it for good (CLOSED).

import { SseParser } from "./sse.js";

export class FetchEventSource extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  readyState = FetchEventSource.CONNECTING;
  #lastEventId = null;
  #controller = new AbortController();

  constructor(url, headers) {
    super();
    this.url = url;
    this.headers = headers;
    this.#run();
  }

  close() {
    this.readyState = FetchEventSource.CLOSED;
    this.#controller.abort();
  }

  async #run() {
    while (this.readyState !== FetchEventSource.CLOSED) {
      try {
        const resume = this.#lastEventId === null ? {} : { "Last-Event-ID": this.#lastEventId };
        const response = await fetch(this.url, {
          headers: { Accept: "text/event-stream", ...this.headers, ...resume },
          cache: "no-store",
          signal: this.#controller.signal,
        });
        if (!response.ok) {
          this.readyState = FetchEventSource.CLOSED;
          this.dispatchEvent(new Event("error"));
          return;
        }
        this.readyState = FetchEventSource.OPEN;
        this.dispatchEvent(new Event("open"));
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        const parser = new SseParser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const frame of parser.push(value)) {
            if (frame.id !== null) this.#lastEventId = frame.id;
            if (frame.data) this.dispatchEvent(new MessageEvent("message", { data: frame.data }));
          }
        }
      } catch {
        if (this.readyState === FetchEventSource.CLOSED) return;
      }
      this.readyState = FetchEventSource.CONNECTING;
      this.dispatchEvent(new Event("error"));
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
