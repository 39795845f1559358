-- GETs of the paths listed in SLUICE_BENCH_PATHS (one a line), round robin, keep-alive;
-- tests/bench/query/run reads the RESULT line. errors.status counts responses above 399.
local paths = {}
for line in io.lines(os.getenv("SLUICE_BENCH_PATHS")) do
  paths[#paths + 1] = line
end
local i = 0

request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d status_errors=%d "
      .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
