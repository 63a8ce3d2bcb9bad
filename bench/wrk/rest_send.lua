-- Non-streaming send over the 1.0 HTTP+JSON binding: POST /a2a/rest/message:send, the same message as send.lua.
wrk.method = "POST"
wrk.path = "/a2a/rest/message:send"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["A2A-Version"] = "1.0"
wrk.body = '{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"hello"}]}}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
