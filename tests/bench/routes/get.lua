-- GET of one fixed path (SLUICE_BENCH_PATH), keep-alive; tests/bench/routes/run reads the
-- RESULT line. errors.status counts responses with a status above 399.
wrk.method = "GET"
wrk.path = os.getenv("SLUICE_BENCH_PATH") or "/health/live"

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d status_errors=%d "
      .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
