// Requests per second of http::client on one keep-alive connection to sluice's http::server, both
// on one io_context in this thread (so the figure is client + server CPU per request), and with
// N requests in flight at once. Prints its numbers; asserts only that every request succeeded.
#include <cstdio>
#include <thread>

#include "sluice/http/client.hpp"
#include "sluice/http/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace sluice::http {
namespace {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

asio::awaitable<response> pong(request&) {
  co_return response::text(200, "text/plain", "pong");
}

client_request ping(std::uint16_t port) {
  client_request r;
  r.method = "GET";
  r.host = "127.0.0.1";
  r.port = port;
  r.target = "/ping";
  return r;
}

asio::awaitable<void> sequential(client& c, std::uint16_t port, int rounds, int& ok) {
  for (int i = 0; i < rounds; ++i) {
    auto [ec, r] = co_await c.send(ping(port), clock_type::now() + 10s);
    ok += !ec && r.status == 200;
  }
}

// `server_thread`: the server on a loop (and core) of its own, so the figure is the client's.
void measure(const char* what, int lanes, int rounds_per_lane, bool server_thread = false) {
  asio::io_context io;
  asio::io_context server_io;
  metrics::registry registry;
  router routes;
  routes.add("GET", "/ping", "ping", pong);
  server target(server_thread ? server_io.get_executor() : io.get_executor(), {}, routes, registry);
  const auto port = target.listen("127.0.0.1", 0);
  target.start();
  std::thread server_loop;
  auto work = asio::make_work_guard(server_io);
  if (server_thread)
    server_loop = std::thread([&server_io] { server_io.run(); });
  client c(io.get_executor(), {});
  int ok = 0;
  int finished = 0;
  const auto on_done = [&](std::exception_ptr) {
    if (++finished == lanes)
      io.stop();
  };
  const auto started = clock_type::now();
  for (int i = 0; i < lanes; ++i)
    asio::co_spawn(io, sequential(c, port, rounds_per_lane, ok), on_done);
  io.run();
  work.reset();
  server_io.stop();
  if (server_loop.joinable())
    server_loop.join();
  const double seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  const int total = lanes * rounds_per_lane;
  std::printf(
      "[ bench    ] %s: %d requests, %d in flight, %zu connections: %.0f req/s (%.1f us each)\n",
      what, total, lanes, static_cast<std::size_t>(c.stats().connects), total / seconds,
      seconds * 1e6 / total);
  EXPECT_EQ(ok, total);
}

TEST(http_client_bench, keep_alive_requests_per_second) {
  measure("sequential, server on the same loop", 1, 20'000);
  measure("sequential, server on its own thread", 1, 20'000, true);
  measure("concurrent, server on the same loop", 16, 2'000);
  measure("concurrent, server on its own thread", 16, 2'000, true);
}

}  // namespace
}  // namespace sluice::http
