// Load generator of tests/bench/delivery/run: pushes messages to sluice in batches, then waits
// until a counter of sluice's /metrics has grown by as many (the relay's confirms, or the
// deliveries), and times first push -> last one counted.
//
//   delivery_push --port N --queue Q --messages N [--batch 100] [--connections 8]
//                 [--rate MESSAGES_PER_S] [--pad 170]
//                 [--until METRIC [--labels 'queue="q",outcome="delivered"'] [--timeout S]]
//
// Closed loop (no --rate): `connections` keep-alive clients push batches back to back. Open loop
// (--rate): batch i is sent at start + i * batch / rate whatever the answers do (a slow answer
// does not delay the next batch), over at most `connections` connections. Each payload is
// {"t":<Unix epoch µs at its request's send>,"pad":"x…"}, so a target can tell each message's
// delivery lag; each connection pushes to partition "p<k>".
// With --until, the counter METRIC (the sum of its series whose labels contain every given
// label="value") is read before the first push and polled every 10 ms after the last one.
// Prints one line:
//   RESULT pushed=.. errors=.. push_s=.. total_s=.. rate=.. counted=.. sched_lag_p99_us=..
// where total_s is first push -> the poll that saw the counter reach pushed (push_s without
// --until), rate = pushed / total_s, and sched_lag_p99_us how late (open loop) the generator
// itself sent after its schedule. Exits 1 on a usage error, a failed push or a timeout.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <stdexcept>
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
  std::uint16_t port = 0;
  std::string queue;
  std::uint64_t messages = 0;
  std::uint64_t batch = 100;
  std::size_t connections = 8;
  double rate = 0;
  std::size_t pad = 170;
  std::string until;
  std::vector<std::string> labels;
  double timeout_s = 600;
};

struct run_state {
  std::uint64_t next = 0;  // messages handed out so far
  std::uint64_t pushed = 0;
  std::uint64_t errors = 0;
  std::uint64_t in_flight = 0;
  bool schedule_done = false;
  std::vector<std::int64_t> sched_lag_us;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "delivery_push: %s\nusage: delivery_push --port N --queue Q --messages N "
               "[--batch N] [--connections N] [--rate N] [--pad N] [--until METRIC "
               "[--labels 'k=\"v\",…'] [--timeout S]]\n",
               why);
  std::exit(1);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc)
      usage("missing value");
    const std::string value = argv[++i];
    if (arg == "--port")
      o.port = static_cast<std::uint16_t>(std::stoul(value));
    else if (arg == "--queue")
      o.queue = value;
    else if (arg == "--messages")
      o.messages = std::stoull(value);
    else if (arg == "--batch")
      o.batch = std::stoull(value);
    else if (arg == "--connections")
      o.connections = std::stoul(value);
    else if (arg == "--rate")
      o.rate = std::stod(value);
    else if (arg == "--pad")
      o.pad = std::stoul(value);
    else if (arg == "--until")
      o.until = value;
    else if (arg == "--labels") {
      std::istringstream in(value);
      std::string label;
      while (std::getline(in, label, ','))
        o.labels.push_back(label);
    } else if (arg == "--timeout")
      o.timeout_s = std::stod(value);
    else
      usage("unknown option");
  }
  if (o.port == 0 || o.queue.empty() || o.messages == 0 || o.batch == 0 || o.connections == 0)
    usage("--port, --queue, --messages, a batch and a connection are needed");
  return o;
}

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

sluice::http::client_request request_to(const options& o, std::string method, std::string target) {
  sluice::http::client_request req;
  req.method = std::move(method);
  req.host = "127.0.0.1";
  req.port = o.port;
  req.target = std::move(target);
  return req;
}

std::string batch_body(const options& o, std::uint64_t count, std::size_t connection) {
  const std::string item_head = R"({"queue":")" + o.queue + R"(","partition":"p)" +
                                std::to_string(connection) + R"(","payload":{"t":)" +
                                std::to_string(wall_us()) + R"(,"pad":")" +
                                std::string(o.pad, 'x') + "\"}}";
  std::string body = R"({"items":[)";
  body.reserve(12 + count * (item_head.size() + 1));
  for (std::uint64_t i = 0; i < count; ++i) {
    if (i)
      body += ',';
    body += item_head;
  }
  body += "]}";
  return body;
}

asio::awaitable<void> push_one(sluice::http::client& c, const options& o, run_state& r,
                               std::uint64_t count, std::size_t connection) {
  auto req = request_to(o, "POST", "/api/v1/push");
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = batch_body(o, count, connection);
  auto [ec, resp] = co_await c.send(std::move(req), clock_type::now() + std::chrono::seconds(60));
  if (!ec && resp.status == 201) {
    r.pushed += count;
  } else {
    ++r.errors;
    if (r.errors <= 3)
      std::fprintf(stderr, "delivery_push: push failed: %s %d %s\n", ec.message().c_str(),
                   resp.status, resp.body.substr(0, 300).c_str());
  }
}

std::uint64_t take(const options& o, run_state& r) {
  const std::uint64_t n = std::min(o.batch, o.messages - r.next);
  r.next += n;
  return n;
}

asio::awaitable<void> closed_loop_client(sluice::http::client& c, const options& o, run_state& r,
                                         std::size_t connection) {
  while (r.next < o.messages && r.errors == 0)
    co_await push_one(c, o, r, take(o, r), connection);
  --r.in_flight;
}

asio::awaitable<void> open_loop_one(sluice::http::client& c, const options& o, run_state& r,
                                    std::uint64_t count, std::size_t connection) {
  co_await push_one(c, o, r, count, connection);
  --r.in_flight;
}

asio::awaitable<void> open_loop(sluice::http::client& c, const options& o, run_state& r) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const auto interval = std::chrono::duration<double>(static_cast<double>(o.batch) / o.rate);
  const auto start = clock_type::now() + std::chrono::milliseconds(10);
  for (std::uint64_t i = 0; r.next < o.messages; ++i) {
    const auto at =
        start + std::chrono::duration_cast<clock_type::duration>(interval * static_cast<double>(i));
    if (clock_type::now() < at) {
      timer.expires_at(at);
      co_await timer.async_wait(asio::use_awaitable);
    }
    r.sched_lag_us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - at).count());
    ++r.in_flight;
    asio::co_spawn(executor, open_loop_one(c, o, r, take(o, r), i % o.connections), asio::detached);
  }
  r.schedule_done = true;
}

// The sum of METRIC's series that carry every label of o.labels, or -1 when /metrics failed.
asio::awaitable<double> read_counter(sluice::http::client& c, const options& o) {
  auto [ec, resp] = co_await c.send(request_to(o, "GET", "/metrics"),
                                    clock_type::now() + std::chrono::seconds(10));
  if (ec || resp.status != 200)
    co_return -1;
  double sum = 0;
  std::istringstream in(resp.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, o.until.size(), o.until) != 0 || line.size() <= o.until.size() ||
        (line[o.until.size()] != '{' && line[o.until.size()] != ' '))
      continue;
    const auto space = line.rfind(' ');
    const std::string_view series(line.data(), space);
    const bool all = std::all_of(o.labels.begin(), o.labels.end(), [&](const std::string& l) {
      return series.find(l) != std::string_view::npos;
    });
    if (all)
      sum += std::strtod(line.c_str() + space + 1, nullptr);
  }
  co_return sum;
}

struct outcome {
  run_state r;
  double push_s = 0;
  double total_s = 0;
  double counted = 0;
  bool timed_out = false;
};

asio::awaitable<void> run(sluice::http::client& c, const options& o, outcome& out) {
  auto executor = co_await asio::this_coro::executor;
  run_state& r = out.r;
  double before = 0;
  if (!o.until.empty()) {
    before = co_await read_counter(c, o);
    if (before < 0)
      throw std::runtime_error("cannot read /metrics");
  }
  asio::steady_timer timer(executor);
  const auto started = clock_type::now();
  if (o.rate > 0) {
    co_await open_loop(c, o, r);
  } else {
    for (std::size_t k = 0; k < o.connections; ++k) {
      ++r.in_flight;
      asio::co_spawn(executor, closed_loop_client(c, o, r, k), asio::detached);
    }
  }
  while (r.in_flight > 0) {
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(asio::use_awaitable);
  }
  const auto pushed_at = clock_type::now();
  out.push_s = std::chrono::duration<double>(pushed_at - started).count();
  out.total_s = out.push_s;
  if (o.until.empty() || r.errors > 0)
    co_return;
  const auto deadline = pushed_at + std::chrono::duration<double>(o.timeout_s);
  for (;;) {
    const double now_value = co_await read_counter(c, o);
    const auto seen_at = clock_type::now();
    out.counted = now_value - before;
    if (now_value >= 0 && out.counted >= static_cast<double>(r.pushed)) {
      out.total_s = std::chrono::duration<double>(seen_at - started).count();
      co_return;
    }
    if (seen_at > deadline) {
      out.timed_out = true;
      out.total_s = std::chrono::duration<double>(seen_at - started).count();
      co_return;
    }
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(asio::use_awaitable);
  }
}

std::int64_t percentile(std::vector<std::int64_t> v, double q) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(rank, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  asio::io_context io(1);
  sluice::http::client_options copts;
  // One more than the pushers: the /metrics polls never wait behind a push.
  copts.max_connections_per_host = o.connections + 1;
  copts.idle_timeout = std::chrono::minutes(10);
  sluice::http::client c(io.get_executor(), copts);
  outcome out;
  std::exception_ptr failure;
  asio::co_spawn(io, run(c, o, out), [&](std::exception_ptr e) {
    failure = e;
    c.close();
  });
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "delivery_push: %s\n", e.what());
    }
    return 1;
  }
  std::printf(
      "RESULT pushed=%llu errors=%llu push_s=%.3f total_s=%.3f rate=%.0f counted=%.0f "
      "sched_lag_p99_us=%lld\n",
      static_cast<unsigned long long>(out.r.pushed), static_cast<unsigned long long>(out.r.errors),
      out.push_s, out.total_s,
      out.total_s > 0 ? static_cast<double>(out.r.pushed) / out.total_s : 0.0, out.counted,
      static_cast<long long>(percentile(out.r.sched_lag_us, 0.99)));
  if (out.timed_out)
    std::fprintf(stderr, "delivery_push: %s grew by %.0f of %llu within %.0f s\n", o.until.c_str(),
                 out.counted, static_cast<unsigned long long>(out.r.pushed), o.timeout_s);
  return out.r.errors == 0 && !out.timed_out ? 0 : 1;
}
