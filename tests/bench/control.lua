-- wrk script for POST /v1/control with one (state, target) pair; used by bench_server.sh.
-- Latency percentiles are printed in microseconds so a shell can read them.
wrk.method = "POST"
wrk.path = "/v1/control"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"state": [1.0, 0.5], "target": [0.0, 0.0]}'

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
                 summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), errors))
end
