// The HTTP server in-process with routes of the test's own: what no route of the daemon can be
// made to do on demand (a handler that throws).
#include "sluice/http/server.hpp"

#include <map>
#include <memory>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "sluice_test/http_client.hpp"

namespace sluice::http {
namespace {

namespace asio = boost::asio;

asio::awaitable<response> failing_handler(request&) {
  throw std::runtime_error("a bug in a handler");
  co_return response::json(200, "{}");
}

asio::awaitable<response> greeting_handler(request& req) {
  co_return response::json(200, "{\"hello\":\"" + req.params.at("name") + "\"}");
}

// A server on a loop thread of its own; stop() (or the destructor) stops the loop, even when a
// failed assertion leaves the test early.
struct running_server {
  asio::io_context io;
  metrics::registry registry;
  router routes;
  server_options options;
  std::unique_ptr<server> http;
  std::uint16_t port = 0;
  std::thread loop;

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
  ~running_server() { stop(); }
};

TEST(server, a_handler_that_throws_gets_a_json_500_and_the_server_keeps_serving) {
  running_server s;
  s.routes.add("GET", "/boom", "boom", failing_handler);
  s.routes.add("GET", "/hello/{name}", "hello", greeting_handler);
  s.start();
  const auto port = s.port;

  test::http_connection conn(port);
  const auto failed = conn.request("GET", "/boom", "", {{"X-Request-Id", "bug-1"}});
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(failed.header("x-request-id"), "bug-1");
  EXPECT_EQ(failed.json()["error"]["code"], "internal_error");
  EXPECT_EQ(failed.body.find("a bug in a handler"), std::string::npos)
      << "internals stay in the log";
  const auto next = conn.request("GET", "/hello/sluice");
  EXPECT_EQ(next.status, 200) << "the same connection serves on";
  EXPECT_EQ(next.json()["hello"], "sluice");

  s.stop();
  EXPECT_NE(s.registry.expose().find(
                "sluice_http_requests_total{route=\"boom\",method=\"GET\",code=\"500\"} 1"),
            std::string::npos)
      << s.registry.expose();
}

asio::awaitable<response> size_handler(request& req) {
  co_return response::json(200, "{\"bytes\":" + std::to_string(req.body.size()) + "}");
}

asio::awaitable<response> large_handler(request&) {
  co_return response::text(200, "text/plain", std::string(1024 * 1024, 'x'));
}

TEST(server, a_large_request_or_response_leaves_no_large_buffers_behind) {
  running_server s;
  s.routes.add("POST", "/size", "size", size_handler);
  s.routes.add("GET", "/large", "large", large_handler);
  s.options.max_header_bytes = 512 * 1024;
  s.start();
  auto& held = s.registry.add_gauge("sluice_http_connection_buffer_bytes", "", {"listener"})
                   .with({s.options.name});
  // Each connection keeps at most one read's worth (16 KiB) for reading and as much for the
  // response bytes; the trim runs after the response is written, so it is waited for.
  const auto held_at_most = [&held](double bytes) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (held.value() > bytes && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return held.value();
  };
  const auto trimmed = [&] { return held_at_most(32 * 1024); };

  auto conn = std::make_unique<test::http_connection>(s.port);
  EXPECT_EQ(conn->request("POST", "/size", std::string(4 * 1024 * 1024, 'b')).body,
            "{\"bytes\":4194304}");
  EXPECT_LE(trimmed(), 32 * 1024) << "after a 4 MiB body";
  std::map<std::string, std::string> padding;  // one field holds at most 64 KiB in Beast
  for (int i = 0; i < 8; ++i)
    padding["X-Pad-" + std::to_string(i)] = std::string(50 * 1024, 'h');
  EXPECT_EQ(conn->request("POST", "/size", "", padding).status, 200);
  EXPECT_LE(trimmed(), 32 * 1024) << "after 400 KiB of headers";
  EXPECT_EQ(conn->request("GET", "/large").body.size(), 1024u * 1024);
  EXPECT_LE(trimmed(), 32 * 1024) << "after a 1 MiB response";
  conn.reset();
  EXPECT_EQ(held_at_most(0), 0.0) << "a closed connection holds nothing";
}

}  // namespace
}  // namespace sluice::http
