// Server-sent events over fetch: EventSource cannot POST, so a send's answer is read with this parser.

/** Splits a text stream into SSE frames ({id, event, data}); comments (`: ping`) are dropped. */
export class SseParser {
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
