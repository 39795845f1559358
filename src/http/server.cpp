#include "sluice/http/server.hpp"

#include <algorithm>
#include <cctype>
#include <list>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <type_traits>

#include "sluice/core/printable.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/http/body_reader.hpp"
#include "sluice/http/client_watch.hpp"
#include "sluice/http/response_wire.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <spdlog/spdlog.h>

namespace sluice::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// The two streams a connection is served over; everything from the first request byte on is
// the same code (templates on the stream type), only the start and the end differ.
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;
template <class Stream>
constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

// Timeouts live on the TCP layer under TLS too.
template <class Stream>
beast::tcp_stream& tcp_of(Stream& stream) {
  return beast::get_lowest_layer(stream);
}

template <class Stream>
Stream make_stream(tcp::socket socket, ssl::context* context) {
  if constexpr (is_tls<Stream>)
    return Stream(std::move(socket), *context);
  else
    return Stream(std::move(socket));
}

// What the server keeps of every open connection whatever its stream: shutdown() reaches the
// socket through it.
struct connection_base {
  connection_base(const tcp::socket& socket, std::shared_ptr<ssl::context> tls)
      : context(std::move(tls)) {
    beast::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    if (!ec)
      remote_address = peer.address().to_string();
  }
  virtual ~connection_base() = default;
  virtual tcp::socket& socket() = 0;

  // The context this connection was accepted with: a SIGHUP reload does not change it.
  std::shared_ptr<ssl::context> context;
  std::string remote_address;
  bool busy = false;             // between the first byte of a request and the end of its response
  std::size_t buffer_bytes = 0;  // counted in sluice_http_connection_buffer_bytes
};

template <class Stream>
struct connection final : connection_base {
  connection(tcp::socket s, std::shared_ptr<ssl::context> tls)
      : connection_base(s, std::move(tls)),
        stream(make_stream<Stream>(std::move(s), context.get())) {}
  tcp::socket& socket() override { return tcp_of(stream).socket(); }
  Stream stream;
};

// The ends of a connection that are not errors: the peer left (with or without TLS's
// close_notify), a timeout, or shutdown() cancelled the wait.
bool peer_gone(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == ssl::error::stream_truncated;
}

// OpenSSL reports a plain HTTP request where a ClientHello should be.
bool plain_http_on_tls(const beast::error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST;
}

const char* method_label(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get:
      return "GET";
    case bhttp::verb::post:
      return "POST";
    case bhttp::verb::put:
      return "PUT";
    case bhttp::verb::delete_:
      return "DELETE";
    case bhttp::verb::patch:
      return "PATCH";
    case bhttp::verb::head:
      return "HEAD";
    case bhttp::verb::options:
      return "OPTIONS";
    default:
      return "OTHER";
  }
}

// The path-and-query of a target: the origin form as it is, the absolute form (GET
// http://host/path), which RFC 9112 3.2.2 says servers must accept, by its path. Nothing for
// any other form ("proxy/svc/x", "*"): routing it by some guess of a path would let the router
// and the route's checks read different paths.
std::optional<std::string> origin_form(std::string_view target) {
  if (target.starts_with('/'))
    return std::string(target);
  const auto scheme = target.find("://");
  if (scheme == std::string_view::npos || scheme == 0 ||
      std::isalpha(static_cast<unsigned char>(target.front())) == 0)
    return std::nullopt;
  for (const char c : target.substr(0, scheme)) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '-' && c != '.')
      return std::nullopt;
  }
  const auto path = target.find('/', scheme + 3);
  return path == std::string_view::npos ? "/" : std::string(target.substr(path));
}

// Echo a client's X-Request-Id only when it is short and printable: it goes into logs and headers.
bool acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e)
      return false;
  }
  return true;
}

// A streamed request body, read straight from the connection into the handler's string
// (Beast's buffer_body), so only one read's worth is ever held here.
template <class Stream>
class stream_reader final : public body_reader {
 public:
  stream_reader(Stream& stream, beast::flat_buffer& buffer,
                bhttp::request_parser<bhttp::buffer_body>& parser,
                std::chrono::milliseconds read_timeout)
      : stream_(stream), buffer_(buffer), parser_(parser), read_timeout_(read_timeout) {}

  asio::awaitable<std::error_code> read_some(std::string& out, std::size_t max_bytes) override {
    if (failed_)
      co_return failed_;
    const std::size_t start = out.size();
    // A read may carry only chunk framing and no body byte: read again until one comes.
    while (!parser_.is_done() && out.size() == start && max_bytes > 0) {
      out.resize(start + max_bytes);
      auto& body = parser_.get().body();
      body.data = out.data() + start;
      body.size = max_bytes;
      tcp_of(stream_).expires_after(read_timeout_);
      auto [ec, ignored] = co_await bhttp::async_read_some(stream_, buffer_, parser_, use_tuple);
      const std::size_t got = max_bytes - body.size;
      body.data = nullptr;
      body.size = 0;
      out.resize(start + got);
      read_ += got;
      if (ec == bhttp::error::need_buffer)
        ec = {};
      if (ec) {
        failed_ = classify(ec);
        co_return failed_;
      }
    }
    co_return std::error_code{};
  }

  bool done() const noexcept override { return parser_.is_done(); }
  std::size_t bytes_read() const noexcept override { return read_; }
  std::optional<std::size_t> content_length() const noexcept override {
    const auto n = parser_.content_length();
    return n ? std::optional<std::size_t>(*n) : std::nullopt;
  }

 private:
  static std::error_code classify(const beast::error_code& ec) {
    if (ec == bhttp::error::body_limit)
      return body_errc::too_large;
    if (ec == beast::error::timeout)
      return body_errc::timeout;
    if (peer_gone(ec) || ec == bhttp::error::partial_message)
      return body_errc::closed;
    return body_errc::malformed;
  }

  Stream& stream_;
  beast::flat_buffer& buffer_;
  bhttp::request_parser<bhttp::buffer_body>& parser_;
  std::chrono::milliseconds read_timeout_;
  std::size_t read_ = 0;
  std::error_code failed_;
};

}  // namespace

struct server::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor ex, server_options opts, const router& r, metrics::registry& m)
      : executor(std::move(ex)),
        acceptor(executor),
        options(std::move(opts)),
        routes(r),
        requests(m.add_counter("sluice_http_requests_total", "HTTP requests answered.",
                               {"route", "method", "code"})),
        durations(m.add_histogram("sluice_http_request_duration_seconds",
                                  "Time from a complete request header to the response written.",
                                  {"route"}, metrics::latency_buckets())),
        open_connections(
            m.add_gauge("sluice_http_connections", "Open HTTP connections.", {"listener"})
                .with({options.name})),
        buffer_bytes(m.add_gauge("sluice_http_connection_buffer_bytes",
                                 "Bytes the open HTTP connections keep allocated between requests "
                                 "(read buffer and response bytes).",
                                 {"listener"})
                         .with({options.name})),
        rejected(m.add_counter("sluice_http_connections_rejected_total",
                               "Connections refused because HTTP_MAX_CONNECTIONS was reached.",
                               {"listener"})
                     .with({options.name})),
        handshakes_failed(m.add_counter("sluice_http_tls_handshake_failures_total",
                                        "TLS handshakes that failed or timed out (HTTPS "
                                        "listeners only): plain HTTP, bad clients, scanners.",
                                        {"listener"})
                              .with({options.name})),
        drained(executor) {}

  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  server_options options;
  const router& routes;
  metrics::family<metrics::counter>& requests;
  metrics::family<metrics::histogram>& durations;
  metrics::gauge& open_connections;
  metrics::gauge& buffer_bytes;
  metrics::counter& rejected;
  metrics::counter& handshakes_failed;
  using connection_list = std::list<std::shared_ptr<connection_base>>;
  connection_list live;
  bool stopping = false;
  bool grace_ended = false;
  asio::steady_timer drained;  // cancelled when the last connection ends during shutdown
  uuid_v7_generator ids;

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
      if (stopping)
        break;
      if (ec) {
        spdlog::warn("http[{}]: accept failed: {}", options.name, ec.message());
        // Out of file descriptors (EMFILE) would spin; a short pause lets connections close.
        asio::steady_timer pause(executor, std::chrono::milliseconds(50));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      if (options.tls)
        open<tls_stream>(std::move(socket), options.tls->context());
      else
        open<plain_stream>(std::move(socket), nullptr);
    }
  }

  template <class Stream>
  void open(tcp::socket socket, std::shared_ptr<ssl::context> tls) {
    if (live.size() >= options.max_connections) {
      rejected.inc();
      asio::co_spawn(executor, refuse<Stream>(std::move(socket), std::move(tls)), asio::detached);
      return;
    }
    auto conn = std::make_shared<connection<Stream>>(std::move(socket), std::move(tls));
    live.push_front(conn);
    asio::co_spawn(executor, run(std::move(conn), live.begin()), asio::detached);
  }

  // Over the connection limit: a short answer instead of a silent reset, so clients back off.
  // Under TLS the answer needs the handshake; both fit in the same second.
  template <class Stream>
  asio::awaitable<void> refuse(tcp::socket socket, std::shared_ptr<ssl::context> tls) {
    auto self = shared_from_this();
    Stream stream = make_stream<Stream>(std::move(socket), tls.get());
    tcp_of(stream).expires_after(std::chrono::seconds(1));
    if constexpr (is_tls<Stream>) {
      auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
      if (ec)
        co_return;
    }
    std::string wire;
    serialize_response(overloaded_response(503, "too_many_connections",
                                           "connection limit reached; retry later", 1),
                       11, false, ids.next().to_string(), wire);
    co_await asio::async_write(stream, asio::buffer(wire), use_tuple);
    beast::error_code ignored;
    tcp_of(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  // Answers a request that never reached a handler (limits, malformed input) and ends the
  // connection: the rest of what the client sent cannot be trusted to be framed correctly.
  template <class Stream>
  asio::awaitable<void> reject(connection<Stream>& conn, unsigned version, std::string_view route,
                               const char* method, response r) {
    record(route, method, r.status, 0.0);
    std::string wire;
    serialize_response(r, version, false, ids.next().to_string(), wire);
    tcp_of(conn.stream).expires_after(options.read_timeout);
    co_await asio::async_write(conn.stream, asio::buffer(wire), use_tuple);
  }

  // The metric children of each (route, method, status) seen, looked up without building label
  // vectors: routes are patterns, so this stays a handful of entries.
  struct route_metrics {
    std::string route;
    const char* method;  // one of method_label's literals
    int status;
    metrics::counter* requests;
    metrics::histogram* duration;
  };
  std::vector<route_metrics> recorded;

  void record(std::string_view route, const char* method, int status, double seconds) {
    for (auto& m : recorded) {
      if (m.status == status && m.method == method && m.route == route) {
        m.requests->inc();
        m.duration->observe(seconds);
        return;
      }
    }
    std::string name(route);
    auto& counter = requests.with({name, method, std::to_string(status)});
    auto& histogram = durations.with({name});
    recorded.push_back({std::move(name), method, status, &counter, &histogram});
    counter.inc();
    histogram.observe(seconds);
  }

  template <class Stream>
  asio::awaitable<void> run(std::shared_ptr<connection<Stream>> conn,
                            connection_list::iterator slot) {
    auto self = shared_from_this();
    open_connections.inc();
    const bool secured = co_await handshake(*conn);
    if (secured)
      co_await serve(*conn);
    if constexpr (is_tls<Stream>) {
      // close_notify, so the client can tell our end from a cut; bounded, since the peer may
      // never answer with its own.
      if (secured && conn->socket().is_open()) {
        tcp_of(conn->stream).expires_after(tls_close_timeout);
        co_await conn->stream.async_shutdown(use_tuple);
      }
    }
    beast::error_code ignored;
    conn->socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp_of(conn->stream).close();
    live.erase(slot);
    open_connections.dec();
    buffer_bytes.dec(static_cast<double>(conn->buffer_bytes));
    if (stopping && live.empty())
      drained.cancel();
  }

  static constexpr std::chrono::seconds tls_close_timeout{1};

  // The TLS handshake (nothing to do on a plain listener), within read_timeout: a connection
  // that never sends its ClientHello is closed then, like one that never finishes a request.
  template <class Stream>
  asio::awaitable<bool> handshake(connection<Stream>& conn) {
    if constexpr (!is_tls<Stream>) {
      co_return true;
    } else {
      tcp_of(conn.stream).expires_after(options.read_timeout);
      auto [ec] = co_await conn.stream.async_handshake(ssl::stream_base::server, use_tuple);
      if (!ec)
        co_return true;
      handshakes_failed.inc();
      spdlog::debug("http[{}]: TLS handshake with {} failed: {}", options.name, conn.remote_address,
                    ec.message());
      if (plain_http_on_tls(ec))
        co_await refuse_plain_http(conn.socket());
      co_return false;
    }
  }

  // A plain HTTP request on an HTTPS port gets a plain answer saying so (as nginx's 497 does)
  // rather than a reset. What the client sent is drained before closing: closing with unread
  // bytes would reset the connection and could discard the answer before the client reads it.
  asio::awaitable<void> refuse_plain_http(tcp::socket& socket) {
    std::string wire;
    serialize_response(
        error_response(400, "https_required", "this port speaks HTTPS only; use https://"), 11,
        false, ids.next().to_string(), wire);
    asio::steady_timer deadline(executor, tls_close_timeout);
    deadline.async_wait([&socket](const beast::error_code& ec) {
      if (!ec) {
        beast::error_code ignored;
        socket.cancel(ignored);
      }
    });
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(wire), use_tuple);
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    char sink[4096];
    std::size_t drained_bytes = 0;
    while (!ec && drained_bytes < 64 * 1024) {
      auto [read_ec, got] = co_await socket.async_read_some(asio::buffer(sink), use_tuple);
      ec = read_ec;
      drained_bytes += got;
    }
    deadline.cancel();
  }

  // What a connection keeps between requests: one read's worth. A large request header or
  // response grows its buffers; kept, an idle keep-alive connection would hold that memory for
  // as long as it lives.
  static constexpr std::size_t kept_buffer_bytes = 16 * 1024;

  void trim(connection_base& conn, beast::flat_buffer& read, std::string& wire) {
    if (read.capacity() > kept_buffer_bytes)
      read.shrink_to_fit();  // keeps a pipelined request's bytes
    if (wire.capacity() > kept_buffer_bytes)
      std::string().swap(wire);
    const std::size_t now = read.capacity() + wire.capacity();
    buffer_bytes.inc(static_cast<double>(now) - static_cast<double>(conn.buffer_bytes));
    conn.buffer_bytes = now;
  }

  template <class Stream>
  asio::awaitable<void> serve(connection<Stream>& conn) {
    beast::flat_buffer buffer;
    std::string wire;  // the responses' bytes; its capacity is reused up to kept_buffer_bytes
    for (;;) {
      conn.busy = false;
      if (buffer.size() == 0) {
        if (stopping)
          co_return;
        // The idle timeout covers the wait for a request's first byte; once bytes arrive the
        // (shorter) read timeout covers the rest, so slow senders cannot hold a connection.
        tcp_of(conn.stream).expires_after(options.idle_timeout);
        auto [ec, n] = co_await conn.stream.async_read_some(buffer.prepare(16 * 1024), use_tuple);
        if (ec)
          co_return;  // idle timeout, peer closed, or shutdown: all normal ends
        buffer.commit(n);
      }
      conn.busy = true;

      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
      // Held to the found route's limit once the header is routed.
      parser.body_limit(std::max(options.max_body_bytes, routes.max_stream_body_bytes()));
      tcp_of(conn.stream).expires_after(options.read_timeout);
      auto [ec, header_bytes] =
          co_await bhttp::async_read_header(conn.stream, buffer, parser, use_tuple);
      if (ec == bhttp::error::header_limit) {
        // The limit covers the request line too: when that alone does not fit, the URL is
        // what is too long (414), not the headers.
        const bool line_too_long =
            beast::buffers_to_string(buffer.data()).find('\n') == std::string::npos;
        const std::string limit = std::to_string(options.max_header_bytes) + " bytes";
        response too_large =
            line_too_long
                ? error_response(414, "uri_too_long", "request line exceeds " + limit)
                : error_response(431, "headers_too_large", "request headers exceed " + limit);
        co_await reject(conn, 11, "unmatched", "OTHER", std::move(too_large));
        co_return;
      }
      if (ec == bhttp::error::body_limit) {  // a declared Content-Length over the limit
        co_await reject(
            conn, 11, "unmatched", "OTHER",
            body_too_large(std::max(options.max_body_bytes, routes.max_stream_body_bytes())));
        co_return;
      }
      if (peer_gone(ec))
        co_return;
      if (ec) {
        co_await reject(
            conn, 11, "unmatched", "OTHER",
            error_response(400, "bad_request", "malformed HTTP request: " + ec.message()));
        co_return;
      }
      auto& header = parser.get();
      const unsigned version = header.version();
      const char* method = method_label(header.method());
      // RFC 9112 3.2: an HTTP/1.1 request without Host is a 400.
      if (version >= 11 && header.find(bhttp::field::host) == header.end()) {
        co_await reject(conn, version, "unmatched", method,
                        error_response(400, "bad_request", "HTTP/1.1 request without Host"));
        co_return;
      }
      // Transfer codings other than chunked (gzip, deflate) would hand handlers bytes they
      // cannot read; RFC 9112 6.1 says 501.
      if (const auto te = header.find(bhttp::field::transfer_encoding); te != header.end()) {
        std::string codings(te->value());
        std::erase_if(codings, [](char c) { return c == ' ' || c == '\t'; });
        if (!beast::iequals(codings, "chunked")) {
          co_await reject(conn, version, "unmatched", method,
                          error_response(501, "not_implemented",
                                         "Transfer-Encoding " + std::string(te->value()) +
                                             " is not supported; only chunked"));
          co_return;
        }
      }

      auto target = origin_form(header.target());
      if (!target) {
        co_await reject(conn, version, "unmatched", method,
                        error_response(400, "bad_request",
                                       "the request target is neither a path starting with / "
                                       "nor an absolute URL"));
        co_return;
      }
      const auto started = std::chrono::steady_clock::now();
      request req = request_of(header, std::move(*target), conn);
      const bool keep_alive = header.keep_alive();
      // HEAD is GET without the body (RFC 9110 9.3.2): routed as GET, the body cut off below,
      // Content-Length kept.
      // A route that takes HEAD itself (the proxy) gets it as it came.
      const bool head = req.method == "HEAD";
      if (head && !routes.has("HEAD", req.path))
        req.method = "GET";
      // Routed and authorized on the header alone, so a body nobody will take (no route, no
      // permission, too large for the route) is refused before it is read.
      const auto found = routes.find(req);
      std::optional<response> early = routing_error(found, req);
      const route_options* route =
          found.outcome == router::match::kind::found ? found.options : nullptr;
      if (!early && route != nullptr && options.authorize)
        early = options.authorize(req, *route);
      const bool streamed = !early && route != nullptr && route->stream_body;
      const std::size_t body_limit = streamed ? route->max_body_bytes : options.max_body_bytes;
      const auto declared = parser.content_length();
      const bool oversized = declared && *declared > body_limit;
      // No route takes it and its body is over the server's limit: 413, as when no route
      // streams (the parser's limit then stops it before routing), whatever routes exist.
      if (oversized && route == nullptr) {
        co_await reject(conn, version, found.route_name, method, body_too_large(body_limit));
        co_return;
      }
      // A refused request whose body will not be read (too large, or a streaming route's,
      // possibly huge) is answered from its header, then the connection ends.
      if (early && (oversized || (route != nullptr && route->stream_body && !parser.is_done()))) {
        co_await reject(conn, version, found.route_name, method, std::move(*early));
        co_return;
      }
      if (oversized) {
        co_await reject(conn, version, found.route_name, method, body_too_large(body_limit));
        co_return;
      }
      parser.body_limit(body_limit);  // chunked bodies count down from here
      // curl and others wait for "100 Continue" before sending a large body.
      // Not to HTTP/1.0 clients: they must not be sent a 1xx (RFC 9110, 15.2).
      if (auto expect = header[bhttp::field::expect];
          version >= 11 && beast::iequals(expect, "100-continue")) {
        // A body no route will take is not asked for: the final answer comes instead of
        // "100 Continue" (RFC 9110 10.1.1), and the connection ends, its body unread.
        if (early) {
          co_await reject(conn, version, found.route_name, method, std::move(*early));
          co_return;
        }
        static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await asio::async_write(conn.stream, asio::buffer(continue_line), use_tuple);
      }

      std::pair<response, std::string> answer;
      bool body_complete = true;
      if (streamed) {
        bhttp::request_parser<bhttp::buffer_body> body_parser(std::move(parser));
        stream_reader<Stream> reader(conn.stream, buffer, body_parser, options.read_timeout);
        req.body_stream = &reader;
        answer = co_await dispatch(conn, buffer, req, found);
        req.body_stream = nullptr;
        body_complete = reader.done();
      } else {
        if (!parser.is_done()) {
          auto [body_ec, ignored] =
              co_await bhttp::async_read(conn.stream, buffer, parser, use_tuple);
          if (body_ec == bhttp::error::body_limit) {
            co_await reject(conn, version, "unmatched", method, body_too_large(body_limit));
            co_return;
          }
          if (body_ec) {
            if (!peer_gone(body_ec) && body_ec != bhttp::error::partial_message) {
              co_await reject(
                  conn, version, "unmatched", method,
                  error_response(400, "bad_request", "malformed HTTP body: " + body_ec.message()));
            }
            co_return;
          }
        }
        req.body = std::move(parser.get().body());
        if (early)
          answer = {std::move(*early), found.route_name};
        else
          answer = co_await dispatch(conn, buffer, req, found);
      }
      auto& [result, route_name] = answer;
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      record(route_name, method, result.status, seconds);
      spdlog::debug("http[{}]: {} {} status={} route={} ms={:.3f} request_id={}", options.name,
                    head ? "HEAD" : req.method, printable(req.path), result.status, route_name,
                    seconds * 1000, req.request_id);

      // A streamed body the handler left unread cannot be skipped safely: the connection ends.
      const bool again = keep_alive && !stopping && body_complete;
      serialize_response(result, version, again, req.request_id, wire);
      if (head)
        wire.resize(wire.size() - result.body.size());
      tcp_of(conn.stream).expires_after(options.read_timeout);
      auto [write_ec, written] =
          co_await asio::async_write(conn.stream, asio::buffer(wire), use_tuple);
      if (write_ec || !again)
        co_return;
      trim(conn, buffer, wire);
    }
  }

  response body_too_large() const { return body_too_large(options.max_body_bytes); }
  static response body_too_large(std::size_t limit) {
    return error_response(413, "body_too_large",
                          "request body exceeds " + std::to_string(limit) + " bytes");
  }

  // The handler's view of a request, built from the header (the body comes later, or never).
  request request_of(const bhttp::request_parser<bhttp::string_body>::value_type& header,
                     std::string target, const connection_base& conn) {
    request req;
    req.method = std::string(header.method_string());
    req.target = std::move(target);
    const auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos)
      req.query = req.target.substr(q + 1);
    for (const auto& field : header)
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    req.remote_address = conn.remote_address;
    const auto given_id = req.header("X-Request-Id");
    req.request_id = given_id && acceptable_request_id(*given_id) ? std::string(*given_id)
                                                                  : ids.next().to_string();
    return req;
  }

  // The 404 or 405 for a request no route takes; nothing when one does.
  static std::optional<response> routing_error(const router::match& found, const request& req) {
    switch (found.outcome) {
      case router::match::kind::not_found:
        return error_response(404, "not_found", "no route for " + req.path);
      case router::match::kind::method_not_allowed: {
        std::string allow;
        for (const auto& m : found.allowed) {
          allow += (allow.empty() ? "" : ", ") + m;
          if (m == "GET")
            allow += ", HEAD";
        }
        auto r = error_response(405, "method_not_allowed",
                                req.method + " is not allowed on " + req.path);
        r.with_header("Allow", allow);
        return r;
      }
      case router::match::kind::found:
        break;
    }
    return std::nullopt;
  }

  // What the watch reads ahead (a pipelined request) before it stops watching: past this the
  // handler simply runs unwatched, rather than the buffer growing without bound.
  static constexpr std::size_t watch_read_ahead_bytes = 64 * 1024;

  // Reads from the socket while the handler runs, so a peer that closes or resets the
  // connection is noticed (read() returns an error) and told to the handler through
  // req.client. Bytes that arrive meanwhile are a pipelined next request: kept in `buffer`.
  // Ends once `finished` is set and `handler_done` cancelled (the flag covers a cancel that
  // comes while no wait is pending).
  template <class Stream>
  asio::awaitable<void> watch_client(connection<Stream>& conn, beast::flat_buffer& buffer,
                                     client_watch& watch, asio::steady_timer& handler_done,
                                     const bool& finished) {
    using namespace asio::experimental::awaitable_operators;
    // Under TLS the read goes through the TLS layer (it decrypts what it reads), without the
    // read timeout: a long handler is not a slow client.
    if constexpr (is_tls<Stream>)
      tcp_of(conn.stream).expires_never();
    while (!finished && buffer.size() < watch_read_ahead_bytes) {
      auto read = read_layer(conn.stream).async_read_some(buffer.prepare(4096), use_tuple);
      auto done = handler_done.async_wait(use_tuple);
      auto first = co_await (std::move(read) || std::move(done));
      if (first.index() == 1)
        co_return;
      const auto [ec, n] = std::get<0>(first);
      if (ec) {
        watch.close();
        break;
      }
      buffer.commit(n);
    }
    if (!finished)
      co_await handler_done.async_wait(use_tuple);
  }

  // What the watch reads from: the socket itself on a plain connection (bypassing the
  // stream's timeout), the TLS stream otherwise.
  template <class Stream>
  static auto& read_layer(Stream& stream) {
    if constexpr (is_tls<Stream>)
      return stream;
    else
      return stream.socket();
  }

  template <class Stream>
  asio::awaitable<std::pair<response, std::string>> dispatch(connection<Stream>& conn,
                                                             beast::flat_buffer& buffer,
                                                             request& req,
                                                             const router::match& found) {
    if (!found.watch_client || req.body_stream != nullptr)
      co_return co_await call(found, req);
    using namespace asio::experimental::awaitable_operators;
    auto watch = std::make_shared<client_watch>();
    req.client = watch;
    asio::steady_timer handler_done(executor, asio::steady_timer::time_point::max());
    std::pair<response, std::string> out;
    bool finished = false;
    auto run_handler = [&]() -> asio::awaitable<void> {
      out = co_await call(found, req);
      finished = true;
      handler_done.cancel();
    };
    auto watched = watch_client(conn, buffer, *watch, handler_done, finished);
    co_await (run_handler() && std::move(watched));
    co_return out;
  }

  asio::awaitable<std::pair<response, std::string>> call(const router::match& found, request& req) {
    try {
      co_return std::pair{co_await (*found.target)(req), found.route_name};
    } catch (const std::exception& e) {
      spdlog::error("http[{}]: handler for {} failed: {} request_id={}", options.name,
                    found.route_name, e.what(), req.request_id);
      co_return std::pair{
          error_response(500, "internal_error", "internal error; see the server log"),
          found.route_name};
    }
  }
};

server::server(asio::any_io_executor executor, server_options options, const router& routes,
               metrics::registry& metrics)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options), routes, metrics)) {}

server::~server() {
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

std::uint16_t server::listen(const std::string& host, std::uint16_t port) {
  tcp::resolver resolver(impl_->executor);
  const auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive);
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  return impl_->acceptor.local_endpoint().port();
}

void server::start() {
  asio::co_spawn(impl_->executor, impl_->accept_loop(), asio::detached);
}

asio::awaitable<void> server::shutdown(std::chrono::milliseconds grace) {
  auto self = impl_;
  self->stopping = true;
  beast::error_code ignored;
  self->acceptor.close(ignored);
  for (auto& conn : self->live) {
    if (!conn->busy)
      conn->socket().cancel(ignored);
  }
  if (!self->live.empty() && !self->grace_ended) {
    self->drained.expires_after(grace);
    co_await self->drained.async_wait(use_tuple);
  }
  if (!self->live.empty()) {
    spdlog::warn("http[{}]: grace period over, closing {} connections", self->options.name,
                 self->live.size());
    for (auto& conn : self->live)
      conn->socket().close(ignored);
  }
}

void server::end_grace() {
  impl_->grace_ended = true;
  impl_->drained.cancel();
}

std::size_t server::connections() const {
  return impl_->live.size();
}

}  // namespace sluice::http
