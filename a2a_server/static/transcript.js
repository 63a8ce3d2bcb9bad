// The conversation: the user's messages and the agent's answers as turns, newest at the bottom.
//
// The box follows the newest text while it streams, unless the user scrolled up to read: then it stays
// put and offers a "latest" button. The newest answer carries id="output" (what the tests and the
// Cancel button's aria-controls point at); older answers give it up.

const NEAR_BOTTOM_PX = 32;

export class Transcript {
  #pinned = true;

  constructor({ box, list, empty, jump }) {
    Object.assign(this, { box, list, emptyNote: empty, jump });
    box.addEventListener("scroll", () => {
      this.#pinned = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
      this.jump.hidden = this.#pinned;
    });
    // the intent to scroll up counts at once: a token arriving before the scroll event must not undo it
    const unpin = () => {
      this.#pinned = false;
      this.jump.hidden = false;
    };
    box.addEventListener("wheel", (event) => event.deltaY < 0 && unpin(), { passive: true });
    box.addEventListener("touchmove", unpin, { passive: true });
    box.addEventListener("keydown", (event) => ["ArrowUp", "PageUp", "Home"].includes(event.key) && unpin());
    jump.addEventListener("click", () => this.reveal(true));
  }

  get isEmpty() {
    return this.list.childElementCount === 0;
  }

  clear() {
    this.list.replaceChildren();
    this.emptyNote.hidden = false;
    this.reveal(true);
  }

  addUser(text) {
    const li = element("li", "turn user");
    li.dataset.role = "user";
    const who = element("p", "who", "You");
    const body = element("div", "bubble", text);
    body.dataset.testid = "user-text";
    li.append(who, body);
    this.#add(li);
    return li;
  }

  /** A new answer at the bottom; it takes id="output" from the one before. */
  addAgent(skill) {
    const turn = new AgentTurn(skill);
    document.getElementById("output")?.removeAttribute("id");
    turn.answer.id = "output";
    this.#add(turn.li);
    return turn;
  }

  /** Scrolls to the newest text if the user has not scrolled away from it (or if `force`). */
  reveal(force = false) {
    if (!force && !this.#pinned) return;
    this.box.scrollTop = this.box.scrollHeight;
    this.#pinned = true;
    this.jump.hidden = true;
  }

  #add(li) {
    this.emptyNote.hidden = true;
    this.list.append(li);
    this.reveal(true);
  }
}

export class AgentTurn {
  constructor(skill) {
    this.li = element("li", "turn agent");
    this.li.dataset.role = "agent";
    const head = element("p", "who");
    this.skill = element("span", "skill", skill ?? "agent");
    this.state = element("span", "badge", "sending");
    this.state.dataset.state = "sending";
    this.task = element("code", "task", "");
    head.append(this.skill, " ", this.state, " ", this.task);
    this.answer = element("pre", "answer");
    this.answer.dataset.testid = "answer";
    this.answer.tabIndex = 0;
    this.note = element("p", "turn-note");
    this.note.dataset.testid = "turn-note";
    this.note.hidden = true;
    this.stats = element("p", "stats");
    this.stats.dataset.testid = "stats";
    this.li.append(head, this.answer, this.note, this.stats);
  }

  setTask(taskId) {
    this.li.dataset.taskId = taskId;
    this.task.textContent = taskId.slice(0, 8);
    this.task.title = `task ${taskId}`;
  }

  setText(text) {
    if (this.answer.textContent !== text) this.answer.textContent = text;
  }

  setState(name) {
    this.state.textContent = name;
    this.state.dataset.state = name;
    this.li.dataset.state = name;
  }

  /** What the agent said beside its answer (a status message, an error), or nothing. */
  setNote(text, kind = "info") {
    this.note.textContent = text ?? "";
    this.note.dataset.kind = kind;
    this.note.hidden = !text;
    if (kind === "error") this.note.setAttribute("role", "alert");
    else this.note.removeAttribute("role");
  }

  /** `stats`: [key, text, title] triples (see stats.js). */
  setStats(stats) {
    this.stats.replaceChildren(...stats.map(([key, text, title]) => {
      const span = element("span", "stat", text);
      span.dataset.stat = key;
      span.title = title;
      return span;
    }));
  }
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}
