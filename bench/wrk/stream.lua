-- Streaming: one 1.0 SendStreamingMessage per request with BENCH_WORDS words (default 100); the echo
-- skill answers one artifact chunk per word, so each completed response is one whole stream.
local words = tonumber(os.getenv("BENCH_WORDS") or "100")
local text = {}
for i = 1, words do text[i] = "w" .. i end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["A2A-Version"] = "1.0"
wrk.headers["Accept"] = "text/event-stream"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"SendStreamingMessage","params":{"message":'
  .. '{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"' .. table.concat(text, " ") .. '"}]}}}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
