// Open-loop HTTP load generator for tests/bench/proxy/run: sends GET requests on a fixed
// schedule (request i at start + i / rate) over at most N keep-alive connections of sluice's
// http::client, whatever the answers do, and measures every latency from the request's
// scheduled send time. A closed-loop tool (wrk) waits for an answer before it sends the next
// request, so a stall delays the requests it would have sent meanwhile and they never count
// (coordinated omission); here a stall shows up in the latencies of every request scheduled
// during it, also the ones that waited for a free connection.
//
//   open_loop --url http://127.0.0.1:8080/path --rate 1000 --duration 10 [--warmup 2]
//             [--connections 16] [--timeout-ms 10000]
//
// Requests scheduled during the warm-up are sent but not counted. Prints one line:
//   RESULT scheduled=.. ok=.. non2xx=.. errors=.. connects=.. rate=.. p50_us=.. p90_us=..
//          p99_us=.. p999_us=.. max_us=.. mean_us=.. lag_p99_us=.. lag_max_us=.. send_p50_us=..
//          send_p99_us=..
// where lag is how late the generator itself started a request after its scheduled time (its
// own health: a large lag means this machine could not keep to the schedule), and send_p50/p99
// are the latencies counted from the actual send instead (without the generator's own lag;
// waiting for a free connection still counts). Exits 1 on a
// usage error or when no request succeeded.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/http/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

struct options {
  std::string host;
  std::uint16_t port = 80;
  std::string target = "/";
  double rate = 1000;
  double duration_s = 10;
  double warmup_s = 2;
  std::size_t connections = 16;
  std::chrono::milliseconds timeout{10'000};
};

struct results {
  std::vector<std::uint32_t> latency_us;  // counted requests that got a 2xx, from schedule
  std::vector<std::uint32_t> service_us;  // the same requests, from their actual send
  std::vector<std::uint32_t> lag_us;      // every counted request
  std::uint64_t scheduled = 0;
  std::uint64_t non2xx = 0;
  std::uint64_t errors = 0;
  std::uint64_t in_flight = 0;
  bool schedule_done = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "open_loop: %s\nusage: open_loop --url http://HOST:PORT/PATH --rate N "
               "--duration S [--warmup S] [--connections N] [--timeout-ms MS]\n",
               why);
  std::exit(1);
}

void parse_url(std::string_view url, options& o) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme)
    usage("--url must start with http://");
  url.remove_prefix(scheme.size());
  const auto slash = url.find('/');
  const auto authority = url.substr(0, slash);
  o.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  const auto colon = authority.rfind(':');
  o.host = std::string(authority.substr(0, colon));
  if (colon != std::string_view::npos)
    o.port = static_cast<std::uint16_t>(std::stoul(std::string(authority.substr(colon + 1))));
  if (o.host.empty())
    usage("--url has no host");
}

options parse(int argc, char** argv) {
  options o;
  bool have_url = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc)
      usage("missing value");
    const char* value = argv[++i];
    if (arg == "--url") {
      parse_url(value, o);
      have_url = true;
    } else if (arg == "--rate") {
      o.rate = std::atof(value);
    } else if (arg == "--duration") {
      o.duration_s = std::atof(value);
    } else if (arg == "--warmup") {
      o.warmup_s = std::atof(value);
    } else if (arg == "--connections") {
      o.connections = static_cast<std::size_t>(std::atol(value));
    } else if (arg == "--timeout-ms") {
      o.timeout = std::chrono::milliseconds(std::atol(value));
    } else {
      usage("unknown option");
    }
  }
  if (!have_url || o.rate <= 0 || o.duration_s <= 0 || o.warmup_s < 0 || o.connections == 0)
    usage("--url, a positive --rate and --duration and at least one connection are needed");
  return o;
}

std::uint32_t micros(clock_type::duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(us, 0, UINT32_MAX));
}

// One request: its latency counts from `scheduled`, not from when it got a connection.
asio::awaitable<void> one(sluice::http::client& c, const options& o, results& r,
                          clock_type::time_point scheduled, bool counted) {
  sluice::http::client_request req;
  req.method = "GET";
  req.host = o.host;
  req.port = o.port;
  req.target = o.target;
  const auto sent = clock_type::now();
  auto [ec, resp] = co_await c.send(std::move(req), scheduled + o.timeout);
  const auto done = clock_type::now();
  if (counted) {
    if (ec)
      ++r.errors;
    else if (resp.status < 200 || resp.status > 299)
      ++r.non2xx;
    else {
      r.latency_us.push_back(micros(done - scheduled));
      r.service_us.push_back(micros(done - sent));
    }
  }
  --r.in_flight;
}

asio::awaitable<void> schedule(sluice::http::client& c, const options& o, results& r) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const auto interval = std::chrono::duration<double>(1.0 / o.rate);
  const auto warmup_n = static_cast<std::uint64_t>(o.warmup_s * o.rate);
  const auto total_n = warmup_n + static_cast<std::uint64_t>(o.duration_s * o.rate);
  const auto start = clock_type::now() + std::chrono::milliseconds(10);
  for (std::uint64_t i = 0; i < total_n; ++i) {
    const auto at =
        start + std::chrono::duration_cast<clock_type::duration>(interval * static_cast<double>(i));
    if (clock_type::now() < at) {
      timer.expires_at(at);
      co_await timer.async_wait(asio::use_awaitable);
    }
    const bool counted = i >= warmup_n;
    if (counted) {
      ++r.scheduled;
      r.lag_us.push_back(micros(clock_type::now() - at));
    }
    ++r.in_flight;
    asio::co_spawn(executor, one(c, o, r, at, counted), asio::detached);
  }
  r.schedule_done = true;
}

std::uint32_t percentile(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty())
    return 0;
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  asio::io_context io(1);
  sluice::http::client_options copts;
  copts.max_connections_per_host = o.connections;
  copts.idle_timeout = std::chrono::minutes(5);
  sluice::http::client c(io.get_executor(), copts);
  results r;
  r.latency_us.reserve(static_cast<std::size_t>(o.rate * o.duration_s) + 16);
  r.lag_us.reserve(r.latency_us.capacity());
  r.service_us.reserve(r.latency_us.capacity());
  const auto on_done = [](std::exception_ptr e) {
    if (e)
      std::rethrow_exception(e);
  };
  asio::co_spawn(io, schedule(c, o, r), on_done);
  // Runs until the schedule has ended and the last answer (or its timeout) has come.
  while (!(r.schedule_done && r.in_flight == 0) && io.run_one() > 0) {
  }
  c.close();
  io.run();

  std::sort(r.latency_us.begin(), r.latency_us.end());
  std::sort(r.lag_us.begin(), r.lag_us.end());
  std::sort(r.service_us.begin(), r.service_us.end());
  double sum = 0;
  for (const auto v : r.latency_us)
    sum += v;
  const auto ok = r.latency_us.size();
  std::printf("RESULT scheduled=%" PRIu64 " ok=%zu non2xx=%" PRIu64 " errors=%" PRIu64
              " connects=%" PRIu64
              " rate=%.0f p50_us=%u p90_us=%u p99_us=%u p999_us=%u max_us=%u"
              " mean_us=%.0f lag_p99_us=%u lag_max_us=%u send_p50_us=%u send_p99_us=%u\n",
              r.scheduled, ok, r.non2xx, r.errors, c.stats().connects, o.rate,
              percentile(r.latency_us, 0.50), percentile(r.latency_us, 0.90),
              percentile(r.latency_us, 0.99), percentile(r.latency_us, 0.999),
              ok ? r.latency_us.back() : 0U, ok ? sum / static_cast<double>(ok) : 0.0,
              percentile(r.lag_us, 0.99), r.lag_us.empty() ? 0U : r.lag_us.back(),
              percentile(r.service_us, 0.50), percentile(r.service_us, 0.99));
  return ok > 0 ? 0 : 1;
}
