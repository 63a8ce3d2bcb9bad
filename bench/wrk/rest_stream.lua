-- Streaming over the 1.0 HTTP+JSON binding: POST /a2a/rest/message:stream with BENCH_WORDS words (as stream.lua).
local words = tonumber(os.getenv("BENCH_WORDS") or "100")
local text = {}
for i = 1, words do text[i] = "w" .. i end

wrk.method = "POST"
wrk.path = "/a2a/rest/message:stream"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["A2A-Version"] = "1.0"
wrk.headers["Accept"] = "text/event-stream"
wrk.body = '{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"' .. table.concat(text, " ") .. '"}]}}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
