// The HTTP server in-process with routes of the test's own: what no route of the daemon can be
// made to do on demand (a handler that throws).
#include "sluice/http/server.hpp"

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

TEST(server, a_handler_that_throws_gets_a_json_500_and_the_server_keeps_serving) {
  asio::io_context io;
  metrics::registry registry;
  router routes;
  routes.add("GET", "/boom", "boom", failing_handler);
  routes.add("GET", "/hello/{name}", "hello", greeting_handler);
  server http(io.get_executor(), server_options{}, routes, registry);
  const auto port = http.listen("127.0.0.1", 0);
  http.start();
  std::thread loop([&io] { io.run(); });

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

  io.stop();
  loop.join();
  EXPECT_NE(registry.expose().find(
                "sluice_http_requests_total{route=\"boom\",method=\"GET\",code=\"500\"} 1"),
            std::string::npos)
      << registry.expose();
}

}  // namespace
}  // namespace sluice::http
