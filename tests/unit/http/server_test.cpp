// The HTTP server in-process with routes of the test's own: what no route of the daemon can be
// made to do on demand (a handler that throws).
#include "sluice/http/server.hpp"

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <thread>

#include "sluice/core/async_event.hpp"
#include "sluice/http/body_reader.hpp"
#include "sluice/http/client_watch.hpp"

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

// A watched route whose handler waits for its client to leave (or 5 s): what the proxy does
// while it waits for a reply.
struct watch_probe {
  std::atomic<int> gone{0};
  std::atomic<int> unwatched{0};
  std::atomic<int> started{0};
};

TEST(server, a_watched_handler_learns_that_its_client_closed_the_connection) {
  running_server s;
  watch_probe probe;
  route_options watched;
  watched.watch_client = true;
  s.routes.add(
      "GET", "/wait", "wait",
      [&probe](request& req) -> asio::awaitable<response> {
        ++probe.started;
        if (!req.client) {
          ++probe.unwatched;
          co_return response::json(200, "{}");
        }
        async_event event;
        req.client->on_close([&event] { event.notify_all(); });
        const auto until = async_event::clock::now() + std::chrono::seconds(5);
        while (!req.client->closed() && async_event::clock::now() < until)
          co_await event.wait_until(until);
        req.client->on_close({});
        if (req.client->closed())
          ++probe.gone;
        co_return response::json(200, "{}");
      },
      watched);
  s.start();
  {
    test::raw_connection conn(s.port);
    conn.send("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (probe.started == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }  // closes the socket while the handler waits
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while (probe.gone == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(probe.gone, 1) << "the handler saw the close well before its own 5 s";
  EXPECT_EQ(probe.unwatched, 0);
}

TEST(server, a_watched_route_still_serves_pipelined_requests_and_head_as_head) {
  running_server s;
  route_options watched;
  watched.watch_client = true;
  const auto echo_method = [](request& req) -> asio::awaitable<response> {
    co_return response::text(200, "text/plain", req.method + (req.client ? " watched" : ""));
  };
  s.routes.add("GET", "/m", "m", echo_method, watched);
  s.routes.add("HEAD", "/m", "m", echo_method, watched);
  s.routes.add("GET", "/plain", "plain", echo_method);
  s.start();
  const auto wire = test::send_raw(s.port,
                                   "GET /m HTTP/1.1\r\nHost: x\r\n\r\n"
                                   "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"
                                   "GET /m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                   std::chrono::seconds(5));
  const auto first = wire.find("GET watched");
  const auto second = wire.find("GET", first + 1);
  const auto third = wire.find("GET watched", first + 1);
  EXPECT_NE(first, std::string::npos) << wire;
  EXPECT_NE(second, std::string::npos) << wire;
  EXPECT_NE(third, std::string::npos) << wire;
  EXPECT_EQ(wire.find("GET watched", second), third) << "served in order: " << wire;
  // HEAD's answers carry no body: what follows the header block is the next response.
  const auto heads = test::send_raw(s.port,
                                    "HEAD /m HTTP/1.1\r\nHost: x\r\n\r\n"
                                    "HEAD /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                    std::chrono::seconds(5));
  EXPECT_EQ(heads.find("watched"), std::string::npos) << heads;
  const auto second_status = heads.find("\r\n\r\nHTTP/1.1 200 OK\r\n");
  EXPECT_NE(second_status, std::string::npos) << heads;
  EXPECT_TRUE(heads.ends_with("\r\n\r\n")) << heads;
}

}  // namespace
}  // namespace sluice::http

namespace sluice::http {
namespace {

// Reads a streamed body in small pieces, answering how many bytes came and whether it ended.
asio::awaitable<response> streamed_size_handler(request& req) {
  std::string piece;
  std::size_t total = 0;
  for (;;) {
    piece.clear();
    const auto ec = co_await req.body_stream->read_some(piece, 1000);
    total += piece.size();
    if (ec)
      co_return error_response(ec == body_errc::too_large ? 413 : 400, "body", ec.message());
    if (req.body_stream->done())
      break;
  }
  co_return response::json(200, "{\"bytes\":" + std::to_string(total) + "}");
}

std::string chunked(const std::string& body, std::size_t piece) {
  std::string out;
  for (std::size_t at = 0; at < body.size(); at += piece) {
    const auto part = body.substr(at, piece);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    out += size + part + "\r\n";
  }
  return out + "0\r\n\r\n";
}

TEST(server, a_stream_body_route_reads_bodies_past_the_server_limit_and_holds_its_own) {
  running_server s;
  s.options.max_body_bytes = 64 * 1024;
  route_options streamed;
  streamed.stream_body = true;
  streamed.max_body_bytes = 1024 * 1024;
  s.routes.add("POST", "/stream", "stream", streamed_size_handler, streamed);
  s.routes.add("POST", "/size", "size", size_handler);
  s.start();

  test::http_connection conn(s.port);
  const auto big = conn.request("POST", "/stream", std::string(600 * 1024, 'a'));
  EXPECT_EQ(big.body, "{\"bytes\":614400}");
  EXPECT_EQ(conn.request("POST", "/stream", "").body, "{\"bytes\":0}");
  EXPECT_EQ(conn.request("POST", "/size", "tiny").body, "{\"bytes\":4}") << "kept alive";
  // The stream route's larger limit lets a big Content-Length past the header; another route
  // still holds it to the server's.
  test::http_connection other(s.port);
  EXPECT_EQ(other.request("POST", "/size", std::string(100 * 1024, 'b')).status, 413);
  test::http_connection over(s.port);
  EXPECT_EQ(over.request("POST", "/stream", std::string(1024 * 1024 + 1, 'c')).status, 413);

  const std::string body(300 * 1024, 'd');
  const auto wire = test::send_raw(s.port,
                                   "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                                   "chunked\r\nConnection: close\r\n\r\n" +
                                       chunked(body, 7000),
                                   std::chrono::seconds(5));
  EXPECT_NE(wire.find("{\"bytes\":307200}"), std::string::npos) << wire.substr(0, 300);
  const auto too_long = test::send_raw(s.port,
                                       "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                                       "chunked\r\nConnection: close\r\n\r\n" +
                                           chunked(std::string(1100 * 1024, 'e'), 64 * 1024),
                                       std::chrono::seconds(5));
  EXPECT_NE(too_long.find("HTTP/1.1 413"), std::string::npos) << too_long.substr(0, 300);
}

TEST(server, authorize_answers_before_the_handler_and_sets_the_caller) {
  running_server s;
  std::atomic<int> called{0};
  route_options readers;
  readers.required = access::read;
  s.routes.add(
      "GET", "/who", "who",
      [&called](request& req) -> asio::awaitable<response> {
        ++called;
        co_return response::json(200,
                                 "{\"name\":\"" + (req.caller ? req.caller->name : "") + "\"}");
      },
      readers);
  route_options streamed;
  streamed.stream_body = true;
  streamed.max_body_bytes = 1 << 30;
  streamed.required = access::write;
  s.routes.add("POST", "/upload", "upload", streamed_size_handler, streamed);
  s.options.authorize = [](request& req, const route_options& route) -> std::optional<response> {
    if (req.header("Authorization") != "Bearer good")
      return error_response(401, "unauthorized", "no");
    auto c = std::make_shared<caller>();
    c->name = "reader";
    c->read = true;
    if (!c->may(route.required))
      return error_response(403, "forbidden", "no");
    req.caller = std::move(c);
    return std::nullopt;
  };
  s.start();

  test::http_connection conn(s.port);
  EXPECT_EQ(conn.request("GET", "/who").status, 401);
  EXPECT_EQ(called, 0);
  const auto ok = conn.request("GET", "/who", "", {{"Authorization", "Bearer good"}});
  EXPECT_EQ(ok.status, 200) << "the same connection serves on after a 401";
  EXPECT_EQ(ok.json()["name"], "reader");
  // A refused upload is answered from its header; its (huge) body is never read.
  test::raw_connection upload(s.port);
  upload.send(
      "POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n"
      "Content-Length: 1000000000\r\n\r\n");
  EXPECT_NE(upload.receive(std::chrono::seconds(5)).find("HTTP/1.1 403"), std::string::npos);
  EXPECT_TRUE(upload.closed_by_peer(std::chrono::seconds(5)));
}

}  // namespace
}  // namespace sluice::http
