// The line under an answer: what the server measured (the final status metadata of an inference task
// carries `usage` and `timings`), else what this page measured, and the cost when the server sends one.

function ms(value) {
  return value >= 1000 ? `${(value / 1000).toFixed(value >= 10_000 ? 0 : 1)} s` : `${Math.round(value)} ms`;
}

function num(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** A cost in whatever shape it comes: 0.0012, "0.0012 USD", {amount, currency}, {usd: 0.0012}. */
function costText(cost) {
  if (num(cost)) return `cost ${cost}`;
  if (typeof cost === "string") return `cost ${cost}`;
  if (cost && typeof cost === "object") {
    const amount = cost.amount ?? cost.total ?? cost.value;
    if (num(amount)) return `cost ${amount}${cost.currency ? ` ${cost.currency}` : ""}`;
    return `cost ${Object.entries(cost).map(([k, v]) => `${k} ${v}`).join(", ")}`;
  }
  return null;
}

/**
 * [key, text, title] triples for one answer. `metadata` is the task's status metadata so far, `run` the
 * page's own clock (startedAt, firstChunkAt, endedAt, chunks; null for a task loaded from the server).
 */
export function statsOf(metadata, run) {
  const out = [];
  const timings = metadata?.timings ?? {};
  const usage = metadata?.usage ?? {};
  if (num(timings.ttft_ms)) {
    out.push(["ttft", `${ms(timings.ttft_ms)} to first token`, "time to first token, measured by the server"]);
  } else if (run?.firstChunkAt != null) {
    out.push(["first-chunk", `first chunk after ${ms(run.firstChunkAt - run.startedAt)}`,
      "measured in this page, from send to the first streamed chunk"]);
  }
  if (num(timings.tokens_per_second)) {
    out.push(["rate", `${timings.tokens_per_second} tokens/s`, "generation rate, measured by the server"]);
  }
  if (num(usage.prompt_tokens) || num(usage.completion_tokens)) {
    const total = num(usage.total_tokens) ? ` = ${usage.total_tokens}` : "";
    out.push(["tokens", `${usage.prompt_tokens ?? 0} prompt + ${usage.completion_tokens ?? 0} completion${total} tokens`,
      "usage reported by the server"]);
  }
  if (usage.finish_reason) out.push(["finish", `finish: ${usage.finish_reason}`, "why generation stopped"]);
  const cost = costText(metadata?.cost ?? usage.cost);
  if (cost) out.push(["cost", cost, "cost reported by the server"]);
  if (num(timings.queue_ms) && timings.queue_ms >= 1) {
    out.push(["queue", `queued ${ms(timings.queue_ms)}`, "time spent waiting for a free model instance"]);
  }
  if (run?.endedAt != null && run.chunks > 0) {
    out.push(["elapsed", `${ms(run.endedAt - run.startedAt)} in all, ${run.chunks} chunk(s)`,
      "measured in this page, from send to the final event"]);
  }
  if (typeof metadata?.model === "string") out.push(["model", metadata.model, "the model that answered"]);
  return out;
}
