// The event log of the task in view: one entry per wire event (an artifact's chunks share one entry).

const MAX_ENTRIES = 300;

export class EventLog {
  constructor({ list, count }) {
    Object.assign(this, { list, count });
  }

  clear() {
    this.list.replaceChildren();
    this.count.textContent = "0";
  }

  /** Adds an entry; `taskId` strips the server's `<task id>:` cursor prefix (the task is shown above). */
  add(kind, eventId, text, taskId) {
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
    this.update(li, eventId, text, taskId);
    this.list.append(li);
    while (this.list.childElementCount > MAX_ENTRIES) this.list.firstElementChild.remove();
    this.list.scrollTop = this.list.scrollHeight;
    this.count.textContent = String(this.list.childElementCount);
    return li;
  }

  update(li, eventId, text, taskId) {
    let shown = eventId ?? "";
    const prefix = taskId ? `${taskId}:` : null;
    if (prefix && shown.startsWith(prefix)) shown = shown.slice(prefix.length);
    li.querySelector(".text").textContent = (shown ? `#${shown} ` : "") + text;
  }

  isLast(li) {
    return this.list.lastElementChild === li;
  }
}
