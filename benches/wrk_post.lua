-- wrk script for benches/gateway_overhead.py: POST the JSON body in the file named by the
-- first script argument, and print one machine-readable RESULT line when done.
--
--     wrk -t2 -c50 -d10s -s benches/wrk_post.lua http://127.0.0.1:PORT/v1/chat/completions -- body.json
local req

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
  -- the tenant key gateway_overhead.py issued (BENCH_KEY); LiteLLM accepts any
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench")
  req = wrk.format()
end

function request()
  return req
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
    "p50_us=%d p95_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
