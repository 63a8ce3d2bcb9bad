// The A2A 1.0 wire as the console speaks it: JSON-RPC envelopes on POST a2a with `A2A-Version: 1.0`.

export const A2A_HEADERS = { "A2A-Version": "1.0" };

// A 1.0 stream closes after a terminal or interrupted state; it has no `final` flag.
export const SETTLED = new Set([
  "TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED",
  "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED",
]);
// Settled but not over: the task waits for the user's next message (sent with its taskId).
export const INTERRUPTED = new Set(["TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"]);

/** An error that ends a run: resuming cannot help (HTTP 4xx, a JSON-RPC error, a broken frame). */
export class Fatal extends Error {}

let rpcIds = 0;

export function rpc(method, params) {
  rpcIds += 1;
  return { jsonrpc: "2.0", id: rpcIds, method, params };
}

export function uid() {
  // crypto.randomUUID() exists only in secure contexts; the console may be served over plain http.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function rpcErrorText(error) {
  return `JSON-RPC error ${error.code}: ${error.message}`;
}

export async function httpErrorText(response) {
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

/** A non-streaming JSON-RPC call; returns its result or throws with the error's text. */
export async function call(method, params) {
  const response = await fetch("a2a", {
    method: "POST",
    headers: { ...A2A_HEADERS, "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(rpc(method, params)),
    cache: "no-store",
  });
  if (!response.ok) throw new Error(await httpErrorText(response));
  const answer = await response.json();
  if (answer.error) throw new Error(rpcErrorText(answer.error));
  return answer.result;
}

export function partsText(parts) {
  return (parts ?? []).map((p) => {
    if (typeof p.text === "string") return p.text;
    if (p.data !== undefined) return JSON.stringify(p.data);
    return `[${p.filename ?? p.mediaType ?? "file"}]`;
  }).join("");
}

/** TASK_STATE_INPUT_REQUIRED -> input-required: the name the page shows and tests read. */
export function stateName(wireState) {
  return String(wireState).replace(/^TASK_STATE_/, "").toLowerCase().replaceAll("_", "-");
}

/** The skill a task ran: the final metadata may say, else the metadata of the message that started it. */
export function skillOf(task) {
  const said = task.metadata?.skill ?? task.history?.find((m) => m.metadata?.skill)?.metadata.skill;
  return typeof said === "string" ? said : null;
}
