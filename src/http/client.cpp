#include "sluice/http/client.hpp"

#include <algorithm>
#include <list>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sluice::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

class client_category_impl : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.http_client"; }
  std::string message(int value) const override {
    switch (static_cast<client_errc>(value)) {
      case client_errc::connect_failed:
        return "could not connect to the target";
      case client_errc::timeout:
        return "the request's deadline passed";
      case client_errc::response_too_large:
        return "the response exceeds the size limit";
      case client_errc::bad_response:
        return "the target's response was malformed or cut off";
      case client_errc::cancelled:
        return "the client was closed";
      case client_errc::invalid_request:
        return "the request could not be serialized";
    }
    return "unknown http client error";
  }
};

struct pool;

// Registers itself in the client's `live` set for as long as it exists, so close() reaches it
// wherever it is owned (a pool, a request's frame) and a frame destroyed unresumed (the
// io_context destroyed with requests in flight) leaves no dangling pointer behind.
struct connection {
  connection(asio::any_io_executor ex, pool& p, std::unordered_set<connection*>& registry)
      : stream(ex), idle_timer(ex), owner(p), live(registry) {
    live.insert(this);
  }
  ~connection() { live.erase(this); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;  // bytes read past a response header stay here for the body
  asio::steady_timer idle_timer;
  pool& owner;
  std::unordered_set<connection*>& live;
  bool idle = false;
  // Tells an idle timer's late completion (expired just before the connection was taken) apart
  // from the wait it was armed for.
  std::uint64_t idle_epoch = 0;
};

// A request waiting for a connection of a full pool. release() hands it an idle connection or
// the slot of a closed one (taking it off the queue) and cancels its timer; the timer alone
// firing means its deadline. It leaves the queue when it ends, however its frame ends.
struct waiter {
  waiter(asio::any_io_executor ex, client::clock::time_point deadline, std::list<waiter*>& q)
      : timer(ex, deadline), queue(q), position(q.insert(q.end(), this)) {}
  ~waiter() {
    if (queued)
      queue.erase(position);
  }
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;
  asio::steady_timer timer;
  std::list<waiter*>& queue;
  std::list<waiter*>::iterator position;
  std::shared_ptr<connection> handed;
  bool queued = true;
  bool granted = false;
};

// Takes the first waiter off the queue.
waiter* next_waiter(std::list<waiter*>& queue) {
  waiter* w = queue.front();
  queue.pop_front();
  w->queued = false;
  return w;
}

struct pool {
  pool(std::string h, std::uint16_t p) : host(std::move(h)), port(p) {}
  std::string host;
  std::uint16_t port;
  std::vector<std::shared_ptr<connection>> idle;  // most recently used last
  std::size_t total = 0;                          // idle + busy + connecting
  std::list<waiter*> waiters;                     // first come, first served
};

// What one request/response exchange on one connection came to.
struct exchange_result {
  std::error_code ec;
  client_response response;
  bool got_bytes = false;  // any byte of a response arrived: the target may have acted
  bool keep_alive = false;
};

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(a, b);
}

// Beast's errors as the caller sees them. Timeout and limits first: they are not the target's
// malformed answer.
client_errc map_read_error(const beast::error_code& ec) {
  if (ec == beast::error::timeout)
    return client_errc::timeout;
  if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit ||
      ec == bhttp::error::buffer_overflow)
    return client_errc::response_too_large;
  return client_errc::bad_response;
}

}  // namespace

struct client::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor ex, client_options opts)
      : executor(std::move(ex)), options(std::move(opts)) {
    options.max_connections_per_host = std::max<std::size_t>(options.max_connections_per_host, 1);
  }

  asio::any_io_executor executor;
  client_options options;
  client_stats stats;
  bool closed = false;
  // Every connection that exists (idle, busy, connecting) and every resolve in progress, so
  // close() can end their operations. Declared before `pools`: the pools' connections leave
  // `live` when they are destroyed.
  std::unordered_set<connection*> live;
  std::unordered_set<tcp::resolver*> resolving;
  std::unordered_map<std::string, std::unique_ptr<pool>> pools;

  pool& pool_for(const std::string& host, std::uint16_t port) {
    std::string key = host + ':' + std::to_string(port);
    auto& slot = pools[key];
    if (!slot)
      slot = std::make_unique<pool>(host, port);
    return *slot;
  }

  std::shared_ptr<connection> open_connection(pool& p) {
    return std::make_shared<connection>(executor, p, live);
  }

  // Gives a pool slot (the pool's total already counts it) to the first waiter, if any.
  // Returns false when nobody waits.
  bool grant(pool& p) {
    if (p.waiters.empty())
      return false;
    waiter* w = next_waiter(p.waiters);
    w->granted = true;
    w->timer.cancel();
    return true;
  }

  // The connection ends: closed, its slot to the next waiter.
  void discard(std::shared_ptr<connection> conn) {
    pool& p = conn->owner;
    live.erase(conn.get());  // at once: close() must not reach it again
    conn->idle = false;
    conn->idle_timer.cancel();
    conn->stream.close();
    if (!closed && grant(p))
      return;
    --p.total;
  }

  static constexpr std::size_t kept_buffer_bytes = 16 * 1024;

  // A connection that finished a response and may be used again: to the first waiter, else idle.
  void release(std::shared_ptr<connection> conn) {
    pool& p = conn->owner;
    conn->stream.expires_never();
    // The read buffer is empty between responses; a large header or chunk grew it, and an idle
    // connection would keep that memory for as long as it lives.
    if (conn->buffer.capacity() > kept_buffer_bytes)
      conn->buffer.shrink_to_fit();
    if (closed) {
      discard(std::move(conn));
      return;
    }
    if (!p.waiters.empty()) {
      waiter* w = next_waiter(p.waiters);
      w->handed = std::move(conn);
      w->timer.cancel();
      return;
    }
    park(std::move(conn));
  }

  void park(std::shared_ptr<connection> conn) {
    pool& p = conn->owner;
    conn->idle = true;
    const std::uint64_t epoch = ++conn->idle_epoch;
    conn->idle_timer.expires_after(options.idle_timeout);
    // Weak references only: a parked connection must not keep the client (or itself) alive.
    std::weak_ptr<impl> weak_self = weak_from_this();
    std::weak_ptr<connection> weak_conn = conn;
    conn->idle_timer.async_wait([weak_self, weak_conn, epoch](const beast::error_code& ec) {
      if (ec)
        return;
      auto self = weak_self.lock();
      auto expired = weak_conn.lock();
      if (!self || !expired || self->closed || !expired->idle || expired->idle_epoch != epoch)
        return;
      self->expire(std::move(expired));
    });
    p.idle.push_back(std::move(conn));
  }

  void expire(std::shared_ptr<connection> conn) {
    auto& idle = conn->owner.idle;
    std::erase(idle, conn);
    discard(std::move(conn));
  }

  std::shared_ptr<connection> take_idle(pool& p) {
    auto conn = std::move(p.idle.back());
    p.idle.pop_back();
    conn->idle = false;
    conn->idle_timer.cancel();
    return conn;
  }

  struct acquired {
    std::error_code ec;
    std::shared_ptr<connection> conn;  // an idle connection, or empty: a slot to connect in
  };

  asio::awaitable<acquired> acquire(pool& p, clock::time_point deadline) {
    if (!p.idle.empty())
      co_return acquired{{}, take_idle(p)};
    if (p.total < options.max_connections_per_host) {
      ++p.total;
      co_return acquired{{}, nullptr};
    }
    waiter w(executor, deadline, p.waiters);
    co_await w.timer.async_wait(use_tuple);
    if (closed) {
      if (w.handed)
        discard(std::move(w.handed));
      else if (w.granted)
        --p.total;
      co_return acquired{client_errc::cancelled, nullptr};
    }
    if (w.handed)
      co_return acquired{{}, std::move(w.handed)};
    if (w.granted)
      co_return acquired{{}, nullptr};
    co_return acquired{client_errc::timeout, nullptr};
  }

  asio::awaitable<std::tuple<std::error_code, std::vector<tcp::endpoint>>> resolve(const pool& p) {
    std::string_view host = p.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    beast::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (!ec)
      co_return std::tuple{std::error_code{},
                           std::vector<tcp::endpoint>{tcp::endpoint(address, p.port)}};
    // getaddrinfo runs on asio's resolver thread and cannot be interrupted: a hanging DNS
    // server delays the request past its deadline (the deadline is checked when it returns).
    struct registered_resolver {
      registered_resolver(asio::any_io_executor ex, std::unordered_set<tcp::resolver*>& set)
          : resolver(ex), registry(set) {
        registry.insert(&resolver);
      }
      ~registered_resolver() { registry.erase(&resolver); }
      registered_resolver(const registered_resolver&) = delete;
      registered_resolver& operator=(const registered_resolver&) = delete;
      tcp::resolver resolver;
      std::unordered_set<tcp::resolver*>& registry;
    };
    registered_resolver lookup(executor, resolving);
    auto [resolve_ec, results] = co_await lookup.resolver.async_resolve(
        std::string(host), std::to_string(p.port), use_tuple);
    std::vector<tcp::endpoint> endpoints;
    for (const auto& entry : results)
      endpoints.push_back(entry.endpoint());
    if (resolve_ec || endpoints.empty())
      co_return std::tuple{std::error_code(client_errc::connect_failed), std::move(endpoints)};
    co_return std::tuple{std::error_code{}, std::move(endpoints)};
  }

  asio::awaitable<std::error_code> connect(connection& conn, clock::time_point deadline) {
    auto [resolve_ec, endpoints] = co_await resolve(conn.owner);
    if (closed)
      co_return client_errc::cancelled;
    if (resolve_ec)
      co_return resolve_ec;
    const auto now = clock::now();
    if (now >= deadline)
      co_return client_errc::timeout;
    const auto connect_deadline = std::min(deadline, now + options.connect_timeout);
    for (const auto& endpoint : endpoints) {
      conn.stream.expires_at(connect_deadline);
      auto [ec] = co_await conn.stream.async_connect(endpoint, use_tuple);
      if (closed)
        co_return client_errc::cancelled;
      if (!ec) {
        beast::error_code ignored;
        conn.stream.socket().set_option(tcp::no_delay(true), ignored);
        ++stats.connects;
        co_return std::error_code{};
      }
      if (ec == beast::error::timeout) {
        // The stream closed the socket. The request's deadline is gone or the target does not
        // answer SYNs within connect_timeout: no other address is tried either way.
        co_return connect_deadline == deadline ? client_errc::timeout : client_errc::connect_failed;
      }
      // A connect that failed leaves the socket in an unspecified state: a fresh one per address.
      beast::error_code ignored;
      conn.stream.socket().close(ignored);
    }
    co_return client_errc::connect_failed;
  }

  asio::awaitable<exchange_result> exchange(connection& conn,
                                            const bhttp::request<bhttp::string_body>& req,
                                            bool head, clock::time_point deadline) {
    exchange_result out;
    conn.stream.expires_at(deadline);
    auto [write_ec, written] = co_await bhttp::async_write(conn.stream, req, use_tuple);
    if (write_ec) {
      out.ec = map_read_error(write_ec);
      out.got_bytes = conn.buffer.size() > 0;
      co_return out;
    }
    for (;;) {
      bhttp::response_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(
          std::min<std::size_t>(options.max_response_header_bytes, UINT32_MAX)));
      parser.body_limit(options.max_response_bytes);
      if (head)
        parser.skip(true);
      auto [header_ec, header_bytes] =
          co_await bhttp::async_read_header(conn.stream, conn.buffer, parser, use_tuple);
      out.got_bytes = out.got_bytes || parser.got_some() || conn.buffer.size() > 0;
      if (header_ec) {
        out.ec = map_read_error(header_ec);
        co_return out;
      }
      const int status = parser.get().result_int();
      // 100 Continue, 103 Early Hints: informational, the final response follows (101 would
      // switch protocols: it is the final answer here). Beast reads a 1xx as a header alone.
      if (status >= 100 && status < 200 && status != 101)
        continue;
      if (!parser.is_done()) {
        auto [body_ec, body_bytes] =
            co_await bhttp::async_read(conn.stream, conn.buffer, parser, use_tuple);
        if (body_ec) {
          out.ec = map_read_error(body_ec);
          co_return out;
        }
      }
      auto& message = parser.get();
      out.response.status = status;
      for (const auto& field : message)
        out.response.headers.emplace_back(std::string(field.name_string()),
                                          std::string(field.value()));
      out.response.body = std::move(message.body());
      // Bytes after the response were not asked for: whatever they are, the connection's
      // framing can no longer be trusted.
      out.keep_alive = message.keep_alive() && req.keep_alive() && conn.buffer.size() == 0;
      co_return out;
    }
  }

  // The request as it goes on the wire (the body moved, not copied); false when Beast refuses it.
  static bool build(client_request& request, bhttp::request<bhttp::string_body>& req) {
    try {
      const auto verb = bhttp::string_to_verb(request.method);
      if (verb == bhttp::verb::unknown)
        req.method_string(request.method);
      else
        req.method(verb);
      req.target(request.target);
      req.version(11);
      bool has_host = false;
      for (const auto& [name, value] : request.headers) {
        has_host = has_host || iequals(name, "host");
        req.insert(name, value);
      }
      if (!has_host) {
        std::string host = request.host;
        if (host.find(':') != std::string::npos && host.front() != '[')
          host = '[' + host + ']';  // an IPv6 literal
        if (request.port != 80)
          host += ':' + std::to_string(request.port);
        req.set(bhttp::field::host, host);
      }
      const bool with_body = !request.body.empty() || verb == bhttp::verb::post ||
                             verb == bhttp::verb::put || verb == bhttp::verb::patch;
      if (with_body) {
        const std::string length = std::to_string(request.body.size());
        const auto given = req.find(bhttp::field::content_length);
        if (given == req.end() || given->value() != length ||
            req.count(bhttp::field::content_length) > 1) {
          req.erase(bhttp::field::content_length);
          req.set(bhttp::field::content_length, length);
        }
        req.erase(bhttp::field::transfer_encoding);
      }
      req.body() = std::move(request.body);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  asio::awaitable<std::tuple<std::error_code, client_response>> run(client_request& request,
                                                                    clock::time_point deadline) {
    using result = std::tuple<std::error_code, client_response>;
    if (closed)
      co_return result{client_errc::cancelled, {}};
    bhttp::request<bhttp::string_body> req;
    if (!build(request, req))
      co_return result{client_errc::invalid_request, {}};
    const bool head = req.method() == bhttp::verb::head;
    // Checked here, or an idle connection would be taken only to time out (and be closed) at once.
    if (clock::now() >= deadline)
      co_return result{client_errc::timeout, {}};

    pool& p = pool_for(request.host, request.port);
    auto [acquire_ec, conn] = co_await acquire(p, deadline);
    if (acquire_ec)
      co_return result{acquire_ec, {}};
    bool reused = conn != nullptr;
    if (!conn) {
      conn = open_connection(p);
      if (auto ec = co_await connect(*conn, deadline)) {
        discard(std::move(conn));
        co_return result{ec, {}};
      }
    }
    for (;;) {
      if (reused)
        ++stats.reuses;
      auto outcome = co_await exchange(*conn, req, head, deadline);
      if (closed) {
        discard(std::move(conn));
        co_return result{client_errc::cancelled, {}};
      }
      if (!outcome.ec) {
        if (outcome.keep_alive)
          release(std::move(conn));
        else
          discard(std::move(conn));
        co_return result{std::error_code{}, std::move(outcome.response)};
      }
      // Nothing came back on a connection that had been idle: the server most likely closed it
      // before our request reached it, so sending again cannot make the target act twice in
      // that case. Once a response byte arrived (or on a fresh connection) it may have acted.
      const bool retry = reused && !outcome.got_bytes && outcome.ec == client_errc::bad_response &&
                         clock::now() < deadline;
      if (!retry) {
        discard(std::move(conn));
        co_return result{outcome.ec, {}};
      }
      ++stats.retries;
      // The slot stays ours: the old connection goes, a fresh one takes its place.
      live.erase(conn.get());
      conn->stream.close();
      conn = open_connection(p);
      reused = false;
      if (auto ec = co_await connect(*conn, deadline)) {
        discard(std::move(conn));
        co_return result{ec, {}};
      }
    }
  }

  // Static, the impl passed by value: the frame owns it from its creation on, so the client may
  // be destroyed even before the returned awaitable first runs.
  static asio::awaitable<std::tuple<std::error_code, client_response>> send(
      std::shared_ptr<impl> self, client_request request, clock::time_point deadline) {
    ++self->stats.requests;
    auto outcome = co_await self->run(request, deadline);
    auto& ec = std::get<0>(outcome);
    if (self->closed && ec)
      ec = client_errc::cancelled;
    if (ec) {
      ++self->stats.failures;
      if (ec == client_errc::timeout)
        ++self->stats.timeouts;
    }
    co_return outcome;
  }

  void close() {
    if (closed)
      return;
    closed = true;
    for (auto& [key, p] : pools) {
      for (auto& conn : p->idle) {
        live.erase(conn.get());
        conn->idle = false;
        conn->idle_timer.cancel();
        conn->stream.close();
      }
      p->total -= p->idle.size();
      p->idle.clear();
      // Each waiter wakes, sees `closed` and removes itself.
      for (auto* w : p->waiters)
        w->timer.cancel();
    }
    // Busy and connecting ones: their operations end with operation_aborted, and their requests
    // (seeing `closed`) with cancelled; they leave `live` then.
    for (auto* conn : live)
      conn->stream.close();
    for (auto* resolver : resolving)
      resolver->cancel();
  }

  std::size_t open_connections() const { return live.size(); }
};

const std::error_category& client_category() {
  static const client_category_impl category;
  return category;
}

std::error_code make_error_code(client_errc e) {
  return {static_cast<int>(e), client_category()};
}

client::client(asio::any_io_executor executor, client_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

client::~client() {
  impl_->close();
}

asio::awaitable<std::tuple<std::error_code, client_response>> client::send(
    client_request request, clock::time_point deadline) {
  return impl::send(impl_, std::move(request), deadline);
}

void client::close() {
  impl_->close();
}

const client_stats& client::stats() const {
  return impl_->stats;
}

std::size_t client::open_connections() const {
  return impl_->open_connections();
}

}  // namespace sluice::http
