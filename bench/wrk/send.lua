-- Non-streaming send: one 1.0 SendMessage per request; each response is one whole JSON-RPC reply.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["A2A-Version"] = "1.0"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":'
  .. '{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"hello"}]}}}'

-- No response() callback: defining one makes wrk hand every body to Lua and slows the generator.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
