// The HTTP server over TLS in-process: what the daemon's routes cannot be made to do on demand
// over HTTPS (a watched handler, a streamed body, a shutdown with idle TLS connections), so
// the code the two streams share is exercised on the TLS one too.
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "sluice/core/async_event.hpp"
#include "sluice/http/body_reader.hpp"
#include "sluice/http/client_watch.hpp"
#include "sluice/http/server.hpp"
#include "sluice/http/tls_identity.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "sluice_test/tls_client.hpp"

namespace sluice::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct tls_server {
  tls_server() : identity(ca.issue("server")) {
    options.tls = std::make_shared<tls_identity>(identity.cert_file, identity.key_file);
  }
  void start() {
    http = std::make_unique<server>(io.get_executor(), options, routes, registry);
    port = http->listen("127.0.0.1", 0);
    http->start();
    loop = std::thread([this] { io.run(); });
  }
  void stop() {
    io.stop();
    if (loop.joinable())
      loop.join();
  }
  ~tls_server() { stop(); }
  test::tls_options client() const { return {ca.ca_file()}; }

  test::test_ca ca;
  test::test_ca::issued identity;
  asio::io_context io;
  metrics::registry registry;
  router routes;
  server_options options;
  std::unique_ptr<server> http;
  std::uint16_t port = 0;
  std::thread loop;
};

asio::awaitable<response> short_wait(request& req) {
  asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
  co_await t.async_wait(asio::use_awaitable);
  co_return response::json(200, req.client ? "{\"watched\":true}" : "{}");
}

// The watch reads through the TLS layer while the handler runs and is cancelled when it ends:
// the session must stay usable for the next requests on the same connection.
TEST(server_tls, a_watched_route_answers_and_the_session_serves_on) {
  tls_server s;
  route_options watched;
  watched.watch_client = true;
  s.routes.add("GET", "/wait", "wait", short_wait, watched);
  s.start();
  test::tls_connection conn(s.port, s.client());
  for (int i = 0; i < 5; ++i) {
    const auto r = conn.request("GET", "/wait");
    EXPECT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body, "{\"watched\":true}") << r.raw;
  }
}

TEST(server_tls, a_watched_handler_learns_that_its_client_left) {
  tls_server s;
  std::atomic<int> started{0};
  std::atomic<int> gone{0};
  route_options watched;
  watched.watch_client = true;
  s.routes.add(
      "GET", "/hold", "hold",
      [&](request& req) -> asio::awaitable<response> {
        ++started;
        async_event event;
        req.client->on_close([&event] { event.notify_all(); });
        const auto until = async_event::clock::now() + 5s;
        while (!req.client->closed() && async_event::clock::now() < until)
          co_await event.wait_until(until);
        req.client->on_close({});
        if (req.client->closed())
          ++gone;
        co_return response::json(200, "{}");
      },
      watched);
  s.start();
  {
    test::tls_connection conn(s.port, s.client());
    conn.send("GET", "/hold");
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (started == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
  }  // closes the socket (no close_notify) while the handler waits
  const auto deadline = std::chrono::steady_clock::now() + 4s;
  while (gone == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(started, 1);
  EXPECT_EQ(gone, 1) << "the handler saw the close well before its own 5 s";
}

asio::awaitable<response> count_streamed(request& req) {
  std::string piece;
  std::size_t total = 0;
  while (!req.body_stream->done()) {
    piece.clear();
    if (const auto ec = co_await req.body_stream->read_some(piece, 1000))
      co_return error_response(400, "body", ec.message());
    total += piece.size();
  }
  co_return response::json(200, "{\"bytes\":" + std::to_string(total) + "}");
}

TEST(server_tls, a_streamed_body_is_read_through_tls) {
  tls_server s;
  route_options streamed;
  streamed.stream_body = true;
  streamed.max_body_bytes = 4 << 20;
  s.routes.add("POST", "/in", "in", count_streamed, streamed);
  s.start();
  test::tls_connection conn(s.port, s.client());
  const std::string body(1 << 20, 'b');
  const auto r = conn.request("POST", "/in", body);
  EXPECT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body, "{\"bytes\":1048576}");
  EXPECT_EQ(conn.request("POST", "/in", "{}").body, "{\"bytes\":2}") << "keep-alive after it";
}

TEST(server_tls, shutdown_closes_idle_tls_connections_at_once) {
  tls_server s;
  s.routes.add("GET", "/wait", "wait", short_wait);
  s.start();
  test::tls_connection idle(s.port, s.client());
  EXPECT_EQ(idle.request("GET", "/wait").status, 200);
  std::atomic<bool> done{false};
  const auto started = std::chrono::steady_clock::now();
  asio::co_spawn(
      s.io,
      [&]() -> asio::awaitable<void> {
        co_await s.http->shutdown(10s);
        done = true;
      },
      asio::detached);
  while (!done && std::chrono::steady_clock::now() - started < 5s)
    std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(done);
  // close_notify is awaited for at most a second; the 10 s grace is not waited for.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

}  // namespace
}  // namespace sluice::http
