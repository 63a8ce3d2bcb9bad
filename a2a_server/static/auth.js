// The API key, when the server needs one (its agent card declares securitySchemes): asked for once, kept in
// sessionStorage (gone when the tab closes), and sent as `Authorization: Bearer` on every call the page makes.
// A2A_HEADERS is spread into every A2A request, so the key is set there once.

import { A2A_HEADERS } from "./wire.js";

const STORE = "a2a-server.api-key";

export function authHeaders() {
  return A2A_HEADERS.Authorization ? { Authorization: A2A_HEADERS.Authorization } : {};
}

function use(key) {
  if (key) A2A_HEADERS.Authorization = `Bearer ${key}`;
  else delete A2A_HEADERS.Authorization;
}

/** The stored key, in use from now on; false when there is none. */
export function useStoredKey() {
  const key = sessionStorage.getItem(STORE);
  use(key);
  return Boolean(key);
}

export function forgetKey() {
  sessionStorage.removeItem(STORE);
  use(null);
}

/** Shows the key form (with `reason` when a key was refused) until the user submits a key. */
export function askForKey(form, reason) {
  const input = form.querySelector("input");
  const note = form.querySelector(".key-note");
  note.textContent = reason ?? "";
  note.hidden = !reason;
  form.hidden = false;
  input.value = "";
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(STORE, key);
      use(key);
      form.hidden = true;
      resolve(key);
    }, { once: true });
  });
}
