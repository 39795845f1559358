// The HTTP client against real servers on 127.0.0.1: sluice's own http::server where the target
// behaves, raw asio sockets where it must misbehave on purpose (never answers, cuts a response
// off, closes idle connections, answers garbage). Everything of a test runs on one io_context in
// the test's thread; waits are on an async_event that servers and requests notify.
#include "sluice/http/client.hpp"

#include <functional>
#include <list>
#include <random>

#include "sluice/core/async_event.hpp"
#include "sluice/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace sluice::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Misbehaviours of a raw target, one per test scenario.
enum class behaviour {
  answer_all,            // 200 "ok" to every request, keep-alive
  never_answer,          // reads the request, then nothing
  answer_once_close,     // answers a connection's first request, then closes it (no notice)
  answer_first_hang_up,  // answers the very first request; later ones are read, then closed
  answer_first_cut_off,  // answers the very first request; later ones get half a body
  garbage,               // answers something that is not HTTP
  continue_chunked,      // 100 Continue, then a chunked 200
  chunked_too_large,     // a chunked body over the client's limit
  header_too_large,      // one 100 KiB header
  connection_close,      // 200 with `Connection: close` (and the socket left open)
  too_much,              // a response followed by bytes nobody asked for
};

struct raw_target;

// What a test owns beyond its coroutine: servers, spawned requests' outcomes, the wake-up event.
// It outlives the loop's run, so nothing a stopped loop leaves half done points into a dead frame.
struct world {
  explicit world(asio::io_context& context) : io(context) {}
  asio::io_context& io;
  async_event changed;
  std::list<raw_target> raws;

  struct target {
    metrics::registry registry;
    router routes;
    std::unique_ptr<server> http;
    std::uint16_t port = 0;
  };
  std::list<target> targets;

  struct outcome {
    bool done = false;
    std::error_code ec;
    client_response response;
  };
  std::list<outcome> outcomes;

  raw_target& raw(behaviour b);
  target& sluice_target(std::function<void(router&)> add_routes, server_options options = {}) {
    auto& t = targets.emplace_back();
    add_routes(t.routes);
    t.http = std::make_unique<server>(io.get_executor(), options, t.routes, t.registry);
    t.port = t.http->listen("127.0.0.1", 0);
    t.http->start();
    return t;
  }

  static asio::awaitable<void> send_into(client& c, client_request request,
                                         clock_type::time_point deadline, outcome& out,
                                         async_event& changed) {
    auto [ec, response] = co_await c.send(std::move(request), deadline);
    out.ec = ec;
    out.response = std::move(response);
    out.done = true;
    changed.notify_all();
  }
  // A request running beside the test's own steps.
  outcome& spawn(client& c, client_request request, clock_type::time_point deadline) {
    auto& out = outcomes.emplace_back();
    asio::co_spawn(io, send_into(c, std::move(request), deadline, out, changed), asio::detached);
    return out;
  }

  // Waits (on `changed`, never polling) until the condition holds; false after `within`.
  asio::awaitable<bool> eventually(const std::function<bool()>& condition,
                                   clock_type::duration within = 10s) {
    const auto deadline = clock_type::now() + within;
    while (!condition()) {
      if (clock_type::now() >= deadline)
        co_return false;
      co_await changed.wait_until(deadline);
    }
    co_return true;
  }
};

struct raw_target {
  raw_target(world& w, behaviour b)
      : acceptor(w.io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        changed(w.changed),
        mode(b) {
    asio::co_spawn(w.io, accept_loop(), asio::detached);
  }
  tcp::acceptor acceptor;
  async_event& changed;
  behaviour mode;
  int connections = 0;
  int requests = 0;
  int peer_closed = 0;    // connections the client closed (read returned EOF or an error)
  int server_closed = 0;  // connections this target closed
  std::string last_request;

  std::uint16_t port() const { return acceptor.local_endpoint().port(); }

  void changed_now() { changed.notify_all(); }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
      if (ec)
        co_return;
      ++connections;
      changed_now();
      asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
    }
  }

  // Reads one whole request (header and Content-Length body) from `buffer` and the socket.
  asio::awaitable<bool> read_request(tcp::socket& socket, std::string& buffer) {
    for (;;) {
      const auto header_end = buffer.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string header = buffer.substr(0, header_end);
        for (auto& c : header)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::size_t length = 0;
        if (const auto at = header.find("content-length:"); at != std::string::npos)
          length = std::stoul(header.substr(at + 15));
        const std::size_t whole = header_end + 4 + length;
        if (buffer.size() >= whole) {
          last_request = buffer.substr(0, whole);
          buffer.erase(0, whole);
          ++requests;
          changed_now();
          co_return true;
        }
      }
      char chunk[16 * 1024];
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk), use_tuple);
      if (ec)
        co_return false;
      buffer.append(chunk, n);
    }
  }

  asio::awaitable<void> write(tcp::socket& socket, const std::string& bytes) {
    co_await asio::async_write(socket, asio::buffer(bytes), use_tuple);
  }

  // Waits for the client to close (or reset) the connection.
  asio::awaitable<void> until_peer_closes(tcp::socket& socket) {
    char chunk[1024];
    for (;;) {
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk), use_tuple);
      if (ec)
        break;
    }
    ++peer_closed;
    changed_now();
  }

  void hang_up(tcp::socket& socket) {
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    ++server_closed;
    changed_now();
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    static const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    std::string buffer;
    switch (mode) {
      case behaviour::answer_all:
        while (co_await read_request(socket, buffer))
          co_await write(socket, ok);
        ++peer_closed;
        changed_now();
        break;
      case behaviour::never_answer:
        if (co_await read_request(socket, buffer))
          co_await until_peer_closes(socket);
        break;
      case behaviour::answer_once_close:
        if (co_await read_request(socket, buffer)) {
          co_await write(socket, ok);
          hang_up(socket);
        }
        break;
      case behaviour::answer_first_hang_up:
      case behaviour::answer_first_cut_off:
        while (co_await read_request(socket, buffer)) {
          if (requests == 1) {
            co_await write(socket, ok);
            continue;
          }
          if (mode == behaviour::answer_first_cut_off)
            co_await write(socket, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
          hang_up(socket);
          break;
        }
        break;
      case behaviour::garbage:
        if (co_await read_request(socket, buffer)) {
          co_await write(socket, "SSH-2.0-OpenSSH_9.2\r\nnot http at all\r\n\r\n");
          co_await until_peer_closes(socket);
        }
        break;
      case behaviour::continue_chunked:
        while (co_await read_request(socket, buffer)) {
          co_await write(socket,
                         "HTTP/1.1 100 Continue\r\n\r\n"
                         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: chunked\r\n\r\n"
                         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        }
        break;
      case behaviour::chunked_too_large:
        if (co_await read_request(socket, buffer)) {
          std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
          for (int i = 0; i < 64; ++i)
            wire += "400\r\n" + std::string(1024, 'c') + "\r\n";
          wire += "0\r\n\r\n";
          co_await write(socket, wire);
          co_await until_peer_closes(socket);
        }
        break;
      case behaviour::header_too_large:
        if (co_await read_request(socket, buffer)) {
          co_await write(socket, "HTTP/1.1 200 OK\r\nX-Big: " + std::string(100 * 1024, 'h') +
                                     "\r\nContent-Length: 2\r\n\r\nok");
          co_await until_peer_closes(socket);
        }
        break;
      case behaviour::connection_close:
        if (co_await read_request(socket, buffer)) {
          co_await write(socket,
                         "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
          co_await until_peer_closes(socket);
        }
        break;
      case behaviour::too_much:
        while (co_await read_request(socket, buffer))
          co_await write(socket, ok + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale");
        break;
    }
  }
};

raw_target& world::raw(behaviour b) {
  return raws.emplace_back(*this, b);
}

// Runs one test coroutine on a fresh loop; the world outlives the loop's run.
void run_on_loop(asio::awaitable<void> (*test)(world&)) {
  asio::io_context io;
  world w(io);
  bool finished = false;
  std::exception_ptr error;
  const auto on_done = [&](std::exception_ptr e) {
    finished = true;
    error = e;
    io.stop();
  };
  asio::co_spawn(io, test(w), on_done);
  io.run_for(120s);
  ASSERT_TRUE(finished) << "the test coroutine did not finish in time";
  if (error)
    std::rethrow_exception(error);
}

client_request get(std::uint16_t port, std::string target = "/") {
  client_request r;
  r.method = "GET";
  r.host = "127.0.0.1";
  r.port = port;
  r.target = std::move(target);
  return r;
}

clock_type::time_point in(clock_type::duration d) {
  return clock_type::now() + d;
}

std::string header_of(const client_response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name)
      return v;
  }
  return {};
}

// The request as sluice's server parsed it, so the test can compare what went over the wire.
asio::awaitable<response> echo(request& req) {
  std::string dump = req.method + '\n' + req.target + '\n';
  for (const auto& [name, value] : req.headers)
    dump += name + ": " + value + '\n';
  dump += '\n';
  dump += req.body;
  auto r = response::text(200, "application/octet-stream", std::move(dump));
  r.with_header("X-Z", "first").with_header("X-A", "second");
  co_return r;
}

void echo_routes(router& routes) {
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
    routes.add(method, "/echo/{rest*}", "echo", echo);
}

std::string binary_body(std::size_t size) {
  std::mt19937 random(42);
  std::string body(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    body[i] = static_cast<char>(i < 256 ? i : random() & 0xff);
  return body;
}

asio::awaitable<void> round_trip(world& w) {
  auto& target = w.sluice_target(echo_routes);
  client c(w.io.get_executor(), {});
  const std::string host = "127.0.0.1:" + std::to_string(target.port);
  const std::string headers =
      "X-First: 1\nx-lower: v\nX-Dup: a\nX-Dup: b\nAccept: */*\nHost: " + host + '\n';
  for (const std::string method : {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    const bool with_body = method == "POST" || method == "PUT";
    auto request = get(target.port, "/echo/a%20b?x=1&y=%2F");
    request.method = method;
    request.headers = {
        {"X-First", "1"}, {"x-lower", "v"}, {"X-Dup", "a"}, {"X-Dup", "b"}, {"Accept", "*/*"}};
    if (with_body)
      request.body = binary_body(1000);
    auto [ec, r] = co_await c.send(request, in(10s));
    EXPECT_FALSE(ec) << method << ": " << ec.message();
    EXPECT_EQ(r.status, 200);
    // POST/PUT carry their body's length, PATCH without a body says 0, the rest nothing.
    std::string length;
    if (with_body)
      length = "Content-Length: 1000\n";
    else if (method == "PATCH")
      length = "Content-Length: 0\n";
    EXPECT_EQ(r.body, method + "\n/echo/a%20b?x=1&y=%2F\n" + headers + length + '\n' + request.body)
        << method << ": headers in order, byte-exact, Host added, no User-Agent";
    EXPECT_EQ(header_of(r, "Content-Type"), "application/octet-stream");
    std::vector<std::string> names;
    for (const auto& [name, value] : r.headers)
      names.push_back(name);
    const auto z = std::find(names.begin(), names.end(), "X-Z");
    const auto a = std::find(names.begin(), names.end(), "X-A");
    EXPECT_TRUE(z != names.end() && a != names.end() && z < a) << "response headers in order";
  }

  // A Host of the caller's own is kept as given; a wrong Content-Length is replaced.
  auto own_host = get(target.port, "/echo/");
  own_host.method = "POST";
  own_host.headers = {{"host", "example.test"}, {"Content-Length", "999"}};
  own_host.body = "abc";
  auto [host_ec, host_r] = co_await c.send(own_host, in(10s));
  EXPECT_FALSE(host_ec);
  EXPECT_EQ(host_r.body, "POST\n/echo/\nhost: example.test\nContent-Length: 3\n\nabc");

  auto large = get(target.port, "/echo/large");
  large.method = "POST";
  large.body = binary_body(5 * 1024 * 1024);
  auto [large_ec, large_r] = co_await c.send(large, in(30s));
  EXPECT_FALSE(large_ec) << large_ec.message();
  const std::string prefix = "POST\n/echo/large\nHost: " + host +
                             "\nContent-Length: " + std::to_string(large.body.size()) + "\n\n";
  EXPECT_EQ(large_r.body.size(), prefix.size() + large.body.size());
  EXPECT_TRUE(large_r.body == prefix + large.body) << "5 MiB binary body byte-exact";

  // HEAD: the GET's headers without a body, and the connection still frames the next response.
  auto head = get(target.port, "/echo/h");
  head.method = "HEAD";
  auto [head_ec, head_r] = co_await c.send(head, in(10s));
  EXPECT_FALSE(head_ec) << head_ec.message();
  EXPECT_EQ(head_r.status, 200);
  EXPECT_TRUE(head_r.body.empty());
  EXPECT_NE(header_of(head_r, "Content-Length"), "0");
  const auto reuses = c.stats().reuses;
  auto [after_ec, after_r] = co_await c.send(get(target.port, "/echo/after"), in(10s));
  EXPECT_FALSE(after_ec);
  EXPECT_EQ(after_r.body.substr(0, 16), "GET\n/echo/after\n");
  EXPECT_EQ(c.stats().reuses, reuses + 1);
  EXPECT_EQ(c.stats().connects, 1u) << "every request above on one connection";
}

TEST(client, methods_headers_and_binary_bodies_round_trip_byte_exact) {
  run_on_loop(round_trip);
}

asio::awaitable<void> keep_alive(world& w) {
  auto& target = w.sluice_target(echo_routes);
  client c(w.io.get_executor(), {});
  int ok = 0;
  for (int i = 0; i < 100; ++i) {
    auto [ec, r] = co_await c.send(get(target.port, "/echo/" + std::to_string(i)), in(10s));
    ok += !ec && r.status == 200 && r.body.starts_with("GET\n/echo/" + std::to_string(i) + "\n");
  }
  EXPECT_EQ(ok, 100);
  EXPECT_EQ(c.stats().requests, 100u);
  EXPECT_EQ(c.stats().connects, 1u);
  EXPECT_EQ(c.stats().reuses, 99u);
  EXPECT_EQ(c.stats().failures, 0u);
  EXPECT_EQ(c.open_connections(), 1u);
  EXPECT_EQ(target.http->connections(), 1u) << "one TCP connection on the server's side too";

  // A deadline already gone: timeout at once, and the idle connection is not spent on it.
  auto [late_ec, late] = co_await c.send(get(target.port, "/echo/late"), clock_type::now() - 1ms);
  EXPECT_EQ(late_ec, client_errc::timeout);
  EXPECT_EQ(c.open_connections(), 1u);
  auto [next_ec, next] = co_await c.send(get(target.port, "/echo/next"), in(10s));
  EXPECT_FALSE(next_ec);
  EXPECT_EQ(c.stats().connects, 1u);
}

TEST(client, sequential_requests_reuse_one_keep_alive_connection) {
  run_on_loop(keep_alive);
}

// A handler that holds its request until the test lets it go.
struct gate {
  int arrived = 0;
  int allowed = 0;
  async_event released;
  async_event* changed = nullptr;
};

asio::awaitable<response> hold(gate& g) {
  ++g.arrived;
  g.changed->notify_all();
  while (g.allowed == 0)
    co_await g.released.wait_until(clock_type::now() + 60s);
  --g.allowed;
  co_return response::text(200, "text/plain", "held");
}

gate* the_gate = nullptr;  // the route's handler is a plain function: it finds the gate here

void hold_routes(router& routes) {
  const auto handler = [](request&) { return hold(*the_gate); };
  routes.add("GET", "/hold", "hold", handler);
}

asio::awaitable<void> per_host_bound(world& w) {
  gate g;
  g.changed = &w.changed;
  the_gate = &g;
  auto& target = w.sluice_target(hold_routes);
  client_options options;
  options.max_connections_per_host = 2;
  client c(w.io.get_executor(), options);

  auto& a = w.spawn(c, get(target.port, "/hold"), in(30s));
  auto& b = w.spawn(c, get(target.port, "/hold"), in(30s));
  auto& third = w.spawn(c, get(target.port, "/hold"), in(30s));
  const std::function<bool()> two_arrived = [&] { return g.arrived == 2; };
  EXPECT_TRUE(co_await w.eventually(two_arrived));
  const auto short_start = clock_type::now();
  auto& impatient = w.spawn(c, get(target.port, "/hold"), in(200ms));
  const std::function<bool()> impatient_done = [&] { return impatient.done; };
  EXPECT_TRUE(co_await w.eventually(impatient_done));
  EXPECT_EQ(impatient.ec, client_errc::timeout) << impatient.ec.message();
  EXPECT_GE(clock_type::now() - short_start, 200ms);
  EXPECT_EQ(g.arrived, 2) << "the bound held: nothing beyond two reached the target";
  EXPECT_FALSE(third.done);
  EXPECT_EQ(c.open_connections(), 2u);
  EXPECT_EQ(target.http->connections(), 2u);

  // The bound is per host:port: another origin is not held up by this one's full pool.
  auto& other = w.raw(behaviour::answer_all);
  auto [other_ec, other_r] = co_await c.send(get(other.port()), in(5s));
  EXPECT_FALSE(other_ec) << other_ec.message();
  EXPECT_EQ(other_r.body, "ok");

  g.allowed = 1;
  g.released.notify_all();
  const std::function<bool()> third_arrived = [&] { return g.arrived == 3; };
  EXPECT_TRUE(co_await w.eventually(third_arrived)) << "a freed connection wakes the waiter";
  EXPECT_EQ(int(a.done) + int(b.done), 1);
  EXPECT_FALSE(third.done);

  g.allowed = 2;
  g.released.notify_all();
  const std::function<bool()> all_done = [&] { return a.done && b.done && third.done; };
  EXPECT_TRUE(co_await w.eventually(all_done));
  for (auto* o : {&a, &b, &third}) {
    EXPECT_FALSE(o->ec) << o->ec.message();
    EXPECT_EQ(o->response.body, "held");
  }
  EXPECT_EQ(c.stats().connects, 3u);
  EXPECT_EQ(c.stats().reuses, 1u) << "the waiter got the freed connection";
  EXPECT_EQ(c.stats().timeouts, 1u);
  the_gate = nullptr;
}

TEST(client, a_request_beyond_the_per_host_bound_waits_for_a_free_connection) {
  run_on_loop(per_host_bound);
}

asio::awaitable<void> timeout_closes(world& w) {
  auto& target = w.raw(behaviour::never_answer);
  client c(w.io.get_executor(), {});
  const auto started = clock_type::now();
  auto [ec, r] = co_await c.send(get(target.port()), in(300ms));
  const auto took = clock_type::now() - started;
  EXPECT_EQ(ec, client_errc::timeout) << ec.message();
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(target.requests, 1);
  const std::function<bool()> closed = [&] { return target.peer_closed == 1; };
  EXPECT_TRUE(co_await w.eventually(closed)) << "the timed-out connection is closed";
  EXPECT_EQ(c.open_connections(), 0u);
  EXPECT_EQ(c.stats().timeouts, 1u);
}

TEST(client, a_deadline_passing_times_out_and_closes_the_connection) {
  run_on_loop(timeout_closes);
}

asio::awaitable<void> connect_refused(world& w) {
  // Bound but not listening: the kernel refuses connections to this port.
  tcp::acceptor reserved(w.io);
  reserved.open(tcp::v4());
  reserved.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  client c(w.io.get_executor(), {});
  const auto started = clock_type::now();
  auto [ec, r] = co_await c.send(get(reserved.local_endpoint().port()), in(10s));
  EXPECT_EQ(ec, client_errc::connect_failed) << ec.message();
  EXPECT_LT(clock_type::now() - started, 2s);
  EXPECT_EQ(c.open_connections(), 0u);
  EXPECT_EQ(c.stats().failures, 1u);

  // A name goes through the resolver; localhost may resolve to ::1 first, where nothing listens.
  auto& target = w.sluice_target(echo_routes);
  auto by_name = get(target.port, "/echo/n");
  by_name.host = "localhost";
  auto [name_ec, name_r] = co_await c.send(by_name, in(10s));
  EXPECT_FALSE(name_ec) << name_ec.message();
  EXPECT_TRUE(name_r.body.starts_with("GET\n/echo/n\nHost: localhost:")) << name_r.body;
}

TEST(client, a_refused_connect_fails_fast_with_connect_failed) {
  run_on_loop(connect_refused);
}

asio::awaitable<void> connect_timeout(world& w) {
  // A listener whose accept queue (backlog 0: one connection) is full: Linux drops further SYNs,
  // so a connect neither succeeds nor fails until a timer ends it.
  tcp::acceptor full(w.io);
  full.open(tcp::v4());
  full.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  full.listen(0);
  tcp::socket filler(w.io);
  filler.connect(full.local_endpoint());
  client_options options;
  options.connect_timeout = 200ms;
  client c(w.io.get_executor(), options);
  const auto started = clock_type::now();
  auto [ec, r] = co_await c.send(get(full.local_endpoint().port()), in(10s));
  const auto took = clock_type::now() - started;
  EXPECT_EQ(ec, client_errc::connect_failed)
      << "connect_timeout first: unreachable, " << ec.message();
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
  auto [short_ec, short_r] = co_await c.send(get(full.local_endpoint().port()), in(100ms));
  EXPECT_EQ(short_ec, client_errc::timeout) << "the deadline first: " << short_ec.message();
  EXPECT_EQ(c.open_connections(), 0u);
}

TEST(client, a_connect_that_hangs_ends_at_connect_timeout_or_the_deadline) {
  run_on_loop(connect_timeout);
}

asio::awaitable<response> big(request&) {
  co_return response::text(200, "text/plain", std::string(4096, 'b'));
}

void big_routes(router& routes) {
  routes.add("GET", "/big", "big", big);
  routes.add("GET", "/small", "small", echo);
}

asio::awaitable<void> too_large(world& w) {
  auto& target = w.sluice_target(big_routes);
  client_options options;
  options.max_response_bytes = 1024;
  options.max_response_header_bytes = 8 * 1024;
  client c(w.io.get_executor(), options);
  auto [ec, r] = co_await c.send(get(target.port, "/big"), in(10s));
  EXPECT_EQ(ec, client_errc::response_too_large) << ec.message();
  EXPECT_EQ(c.open_connections(), 0u) << "a connection left mid-response is not reused";
  auto [small_ec, small_r] = co_await c.send(get(target.port, "/small"), in(10s));
  EXPECT_FALSE(small_ec);
  EXPECT_EQ(small_r.status, 200);

  auto& chunked = w.raw(behaviour::chunked_too_large);
  auto [chunked_ec, chunked_r] = co_await c.send(get(chunked.port()), in(10s));
  EXPECT_EQ(chunked_ec, client_errc::response_too_large) << chunked_ec.message();

  auto& header = w.raw(behaviour::header_too_large);
  auto [header_ec, header_r] = co_await c.send(get(header.port()), in(10s));
  EXPECT_EQ(header_ec, client_errc::response_too_large) << header_ec.message();
  const std::function<bool()> both_closed = [&] {
    return chunked.peer_closed == 1 && header.peer_closed == 1;
  };
  EXPECT_TRUE(co_await w.eventually(both_closed));
}

TEST(client, a_response_over_the_limits_is_response_too_large) {
  run_on_loop(too_large);
}

asio::awaitable<void> idle_closed_by_server(world& w) {
  auto& target = w.raw(behaviour::answer_once_close);
  client c(w.io.get_executor(), {});
  auto [first_ec, first] = co_await c.send(get(target.port()), in(10s));
  EXPECT_FALSE(first_ec);
  EXPECT_EQ(first.body, "ok");
  const std::function<bool()> closed = [&] { return target.server_closed == 1; };
  EXPECT_TRUE(co_await w.eventually(closed));
  auto [second_ec, second] = co_await c.send(get(target.port()), in(10s));
  EXPECT_FALSE(second_ec) << second_ec.message();
  EXPECT_EQ(second.body, "ok");
  EXPECT_EQ(c.stats().retries, 1u);
  EXPECT_EQ(c.stats().connects, 2u);
  EXPECT_EQ(target.requests, 2) << "the request the closed connection lost was never read";
}

TEST(client, a_connection_the_server_closed_while_idle_is_replaced_once) {
  run_on_loop(idle_closed_by_server);
}

asio::awaitable<void> hang_up_after_reading(world& w) {
  // On a fresh connection nothing is retried: the target has read the request.
  auto& fresh = w.raw(behaviour::answer_first_hang_up);
  fresh.requests = 1;  // as though the first request were answered: every request hangs up
  {
    client c(w.io.get_executor(), {});
    auto [ec, r] = co_await c.send(get(fresh.port()), in(10s));
    EXPECT_EQ(ec, client_errc::bad_response) << ec.message();
    EXPECT_EQ(fresh.requests, 2) << "sent once";
    EXPECT_EQ(c.stats().retries, 0u);
  }

  // On a kept-alive connection the loss looks like an idle close: one retry, then the error.
  auto& reused = w.raw(behaviour::answer_first_hang_up);
  client c(w.io.get_executor(), {});
  auto [first_ec, first] = co_await c.send(get(reused.port()), in(10s));
  EXPECT_FALSE(first_ec);
  auto [ec, r] = co_await c.send(get(reused.port()), in(10s));
  EXPECT_EQ(ec, client_errc::bad_response) << ec.message();
  EXPECT_EQ(reused.requests, 3) << "the second request sent twice at most";
  EXPECT_EQ(c.stats().retries, 1u);

  // Once response bytes arrived the target has acted: never sent again.
  auto& cut = w.raw(behaviour::answer_first_cut_off);
  auto [cut_first_ec, cut_first] = co_await c.send(get(cut.port()), in(10s));
  EXPECT_FALSE(cut_first_ec);
  auto [cut_ec, cut_r] = co_await c.send(get(cut.port()), in(10s));
  EXPECT_EQ(cut_ec, client_errc::bad_response) << cut_ec.message();
  EXPECT_EQ(cut.requests, 2);
  EXPECT_EQ(c.stats().retries, 1u) << "no retry after half a body";
  EXPECT_EQ(c.open_connections(), 0u);
}

TEST(client, a_request_the_target_read_is_never_sent_more_than_twice) {
  run_on_loop(hang_up_after_reading);
}

asio::awaitable<void> odd_responses(world& w) {
  client c(w.io.get_executor(), {});
  auto& chunked = w.raw(behaviour::continue_chunked);
  for (int i = 0; i < 2; ++i) {
    auto [ec, r] = co_await c.send(get(chunked.port()), in(10s));
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(r.status, 200) << "the 100 Continue is skipped";
    EXPECT_EQ(r.body, "hello world");
    EXPECT_EQ(header_of(r, "X-Kind"), "chunked");
  }
  EXPECT_EQ(chunked.connections, 1) << "a chunked response keeps the connection";

  auto& garbage = w.raw(behaviour::garbage);
  auto [garbage_ec, garbage_r] = co_await c.send(get(garbage.port()), in(10s));
  EXPECT_EQ(garbage_ec, client_errc::bad_response) << garbage_ec.message();

  auto& close = w.raw(behaviour::connection_close);
  for (int i = 0; i < 2; ++i) {
    auto [ec, r] = co_await c.send(get(close.port()), in(10s));
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(r.body, "ok");
  }
  EXPECT_EQ(close.connections, 2) << "`Connection: close` is honoured";

  // The caller's own `Connection: close` ends the connection after the response as well.
  auto& plain = w.raw(behaviour::answer_all);
  for (int i = 0; i < 2; ++i) {
    auto request = get(plain.port());
    request.headers = {{"Connection", "close"}};
    auto [ec, r] = co_await c.send(request, in(10s));
    EXPECT_FALSE(ec) << ec.message();
  }
  EXPECT_EQ(plain.connections, 2);

  auto& too_much = w.raw(behaviour::too_much);
  for (int i = 0; i < 2; ++i) {
    auto [ec, r] = co_await c.send(get(too_much.port()), in(10s));
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(r.body, "ok") << "bytes after a response are never read as the next one";
  }
  EXPECT_EQ(too_much.connections, 2);
  const std::function<bool()> closed = [&] {
    return garbage.peer_closed == 1 && close.peer_closed == 2;
  };
  EXPECT_TRUE(co_await w.eventually(closed));
  const std::function<bool()> plain_closed = [&] { return plain.peer_closed == 2; };
  EXPECT_TRUE(co_await w.eventually(plain_closed));
}

TEST(client, chunked_1xx_garbage_connection_close_and_extra_bytes) {
  run_on_loop(odd_responses);
}

asio::awaitable<void> idle_timeout(world& w) {
  auto& target = w.raw(behaviour::answer_all);
  client_options options;
  options.idle_timeout = 200ms;
  client c(w.io.get_executor(), options);
  auto [ec, r] = co_await c.send(get(target.port()), in(10s));
  EXPECT_FALSE(ec);
  const auto idle_since = clock_type::now();
  EXPECT_EQ(c.open_connections(), 1u);
  const std::function<bool()> closed = [&] { return target.peer_closed == 1; };
  EXPECT_TRUE(co_await w.eventually(closed));
  EXPECT_GE(clock_type::now() - idle_since, 190ms);
  EXPECT_EQ(c.open_connections(), 0u);
  auto [again_ec, again] = co_await c.send(get(target.port()), in(10s));
  EXPECT_FALSE(again_ec);
  EXPECT_EQ(c.stats().connects, 2u);
  EXPECT_EQ(c.stats().retries, 0u);
}

TEST(client, an_idle_connection_is_closed_after_idle_timeout) {
  run_on_loop(idle_timeout);
}

asio::awaitable<void> close_in_flight(world& w) {
  auto& target = w.raw(behaviour::never_answer);
  client_options options;
  options.max_connections_per_host = 2;
  client c(w.io.get_executor(), options);
  auto& a = w.spawn(c, get(target.port()), in(30s));
  auto& b = w.spawn(c, get(target.port()), in(30s));
  auto& waiting = w.spawn(c, get(target.port()), in(30s));
  const std::function<bool()> two_read = [&] { return target.requests == 2; };
  EXPECT_TRUE(co_await w.eventually(two_read));
  c.close();
  const std::function<bool()> all_done = [&] { return a.done && b.done && waiting.done; };
  EXPECT_TRUE(co_await w.eventually(all_done));
  for (auto* o : {&a, &b, &waiting})
    EXPECT_EQ(o->ec, client_errc::cancelled) << o->ec.message();
  const std::function<bool()> closed = [&] { return target.peer_closed == 2; };
  EXPECT_TRUE(co_await w.eventually(closed));
  EXPECT_EQ(c.open_connections(), 0u);
  auto [after_ec, after] = co_await c.send(get(target.port()), in(10s));
  EXPECT_EQ(after_ec, client_errc::cancelled);

  // Destroyed rather than closed, with requests connected and one waiting.
  auto doomed = std::make_unique<client>(w.io.get_executor(), options);
  auto& x = w.spawn(*doomed, get(target.port()), in(30s));
  auto& y = w.spawn(*doomed, get(target.port()), in(30s));
  auto& z = w.spawn(*doomed, get(target.port()), in(30s));
  const std::function<bool()> four_read = [&] { return target.requests == 4; };
  EXPECT_TRUE(co_await w.eventually(four_read));
  doomed.reset();
  const std::function<bool()> doomed_done = [&] { return x.done && y.done && z.done; };
  EXPECT_TRUE(co_await w.eventually(doomed_done));
  for (auto* o : {&x, &y, &z})
    EXPECT_EQ(o->ec, client_errc::cancelled) << o->ec.message();
  const std::function<bool()> all_closed = [&] { return target.peer_closed == 4; };
  EXPECT_TRUE(co_await w.eventually(all_closed));
}

TEST(client, close_or_destruction_cancels_requests_in_flight) {
  run_on_loop(close_in_flight);
}

// The daemon's shutdown order: the loop stops with requests connected, waiting for a slot and
// parked idle, then the client and the loop are destroyed. Nothing may touch freed memory (the
// ASan build runs this too).
TEST(client, the_loop_destroyed_with_requests_in_flight_is_clean) {
  auto io = std::make_unique<asio::io_context>();
  auto w = std::make_unique<world>(*io);
  auto& silent = w->raw(behaviour::never_answer);
  auto& answering = w->raw(behaviour::answer_all);
  client_options options;
  options.max_connections_per_host = 2;
  auto c = std::make_unique<client>(io->get_executor(), options);
  w->spawn(*c, get(answering.port()), in(30s));
  for (int i = 0; i < 3; ++i)
    w->spawn(*c, get(silent.port()), in(30s));
  const auto started = clock_type::now();
  while (silent.requests < 2 || w->outcomes.front().done == false) {
    ASSERT_LT(clock_type::now() - started, 10s);
    io->run_one_for(100ms);
  }
  EXPECT_EQ(c->open_connections(), 3u) << "two busy, one idle";
  c.reset();
  // What the frames point to goes first (as in run_on_loop): they are destroyed, never resumed.
  w.reset();
  io.reset();
}

TEST(client, error_codes_have_their_own_category) {
  const std::error_code ec = client_errc::timeout;
  EXPECT_STREQ(ec.category().name(), "sluice.http_client");
  EXPECT_EQ(ec.message(), "the request's deadline passed");
}

}  // namespace
}  // namespace sluice::http
