-- wrk script for tests/bench/push/run: POST /api/v1/push with SLUICE_BENCH_BATCH items per
-- request, each with the ~200-byte JSON payload the COPY baseline stores. The body is the same
-- for every request and no request() function is defined, so wrk formats it once and its own
-- CPU cost stays minimal (it shares a 2-core machine with sluice and PostgreSQL).

local batch = tonumber(os.getenv("SLUICE_BENCH_BATCH") or "1")

-- tests/bench/push/run passes the payload its COPY baseline stores; this default is the same.
local payload = os.getenv("SLUICE_BENCH_PAYLOAD")
  or ('{"orderId":100000,"customer":{"id":"c-4711","name":"Ada Lovelace",'
    .. '"email":"ada@example.com"},"items":[{"sku":"A-1","qty":2,"price":9.99},'
    .. '{"sku":"B-7","qty":1,"price":24.5}],"currency":"EUR","note":"leave at the door"}')

local item = '{"queue":"bench","partition":"p0","payload":' .. payload .. '}'
local items = {}
for i = 1, batch do
  items[i] = item
end

wrk.method = "POST"
wrk.path = "/api/v1/push"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"items":[' .. table.concat(items, ",") .. ']}'

-- One machine-readable line for the runner; wrk's own report goes to stdout as well.
-- errors.status counts responses with a status above 399.
function done(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d "
      .. "status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d "
      .. "body_bytes=%d payload_bytes=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, #wrk.body, #payload))
end
