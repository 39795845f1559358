#include "sluice/store/pg_pool.hpp"

#include <algorithm>
#include <deque>
#include <random>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace sluice::store {
namespace asio = boost::asio;

namespace detail {

// A caller parked in acquire(). It lives in that coroutine's frame; whoever hands it a
// connection, a slot or an error removes it from the queue and cancels its timer to wake it.
struct waiter {
  explicit waiter(asio::any_io_executor executor) : timer(executor) {}
  asio::steady_timer timer;
  bool done = false;
  std::error_code ec;
  std::unique_ptr<pg_connection> conn;  // handed over, or null: the caller may open one
};

struct pool_state {
  pool_state(asio::any_io_executor ex, pool_options opts)
      : executor(ex), options(std::move(opts)), rng(std::random_device{}()) {}

  asio::any_io_executor executor;
  pool_options options;
  std::vector<std::unique_ptr<pg_connection>> idle;
  // Slots in use: idle + leased + being opened. A slot freed while callers wait passes to
  // the first of them, so a waiter woken without a connection owns a slot to open one.
  std::size_t open = 0;
  std::deque<waiter*> waiters;
  bool closed = false;
  bool healthy = false;
  // While connects fail, one probe at a time tries the server once its backoff delay is over;
  // everyone else fails at once.
  int failures = 0;
  bool probing = false;
  std::chrono::milliseconds backoff{0};
  clock::time_point next_connect{};
  std::minstd_rand rng;

  void wake(waiter* w, std::unique_ptr<pg_connection> conn, std::error_code ec) {
    w->done = true;
    w->conn = std::move(conn);
    w->ec = ec;
    w->timer.cancel();
  }

  void release_slot() {
    if (!closed && !waiters.empty()) {
      waiter* w = waiters.front();
      waiters.pop_front();
      wake(w, nullptr, {});
      return;
    }
    --open;
  }

  void give_back(std::unique_ptr<pg_connection> conn) {
    if (closed || !conn->is_idle()) {
      conn.reset();
      release_slot();
      return;
    }
    if (!waiters.empty()) {
      waiter* w = waiters.front();
      waiters.pop_front();
      wake(w, std::move(conn), {});
      return;
    }
    idle.push_back(std::move(conn));
  }

  void connect_failed(const std::string& why) {
    healthy = false;
    ++failures;
    backoff = failures == 1 ? options.reconnect_backoff_min
                            : std::min(backoff * 2, options.reconnect_backoff_max);
    // Equal jitter: instances that lost the same server do not all come back in step.
    std::uniform_int_distribution<std::int64_t> half(0, backoff.count() / 2);
    const std::chrono::milliseconds delay(backoff.count() - backoff.count() / 2 + half(rng));
    next_connect = clock::now() + delay;
    spdlog::warn("store: connect failed error=\"{}\" retry_in_ms={}", why, delay.count());
  }

  void connect_succeeded(const pg_connection& conn) {
    if (!healthy) {
      spdlog::info("store: connected server_version={} backend_pid={}", conn.server_version(),
                   conn.backend_pid());
    }
    healthy = true;
    failures = 0;
    backoff = std::chrono::milliseconds{0};
    next_connect = {};
  }
};

}  // namespace detail

pg_lease::pg_lease(std::shared_ptr<detail::pool_state> pool, std::unique_ptr<pg_connection> conn)
    : pool_(std::move(pool)), conn_(std::move(conn)) {}

pg_lease& pg_lease::operator=(pg_lease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::move(other.pool_);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

pg_lease::~pg_lease() {
  release();
}

void pg_lease::release() {
  if (pool_ && conn_)
    pool_->give_back(std::move(conn_));
  pool_.reset();
  conn_.reset();
}

pg_pool::pg_pool(asio::any_io_executor executor, pool_options options)
    : state_(std::make_shared<detail::pool_state>(executor, std::move(options))) {}

pg_pool::~pg_pool() {
  shutdown();
}

bool pg_pool::healthy() const {
  return state_->healthy;
}

const pool_options& pg_pool::options() const {
  return state_->options;
}

pg_pool::counts pg_pool::stats() const {
  return {state_->open, state_->idle.size(), state_->waiters.size()};
}

void pg_pool::shutdown() {
  auto& s = *state_;
  if (s.closed)
    return;
  s.closed = true;
  for (detail::waiter* w : s.waiters)
    s.wake(w, nullptr, make_error_code(errc::shut_down));
  s.waiters.clear();
  s.open -= s.idle.size();
  s.idle.clear();
}

asio::awaitable<std::tuple<std::error_code, pg_lease>> pg_pool::acquire(
    clock::time_point deadline) {
  // The state outlives this frame even if the pool object goes away mid-acquire.
  const std::shared_ptr<detail::pool_state> s = state_;
  using result = std::tuple<std::error_code, pg_lease>;
  const auto failed = [](errc e) { return result(make_error_code(e), pg_lease()); };
  if (s->closed)
    co_return failed(errc::shut_down);

  while (!s->idle.empty()) {
    std::unique_ptr<pg_connection> conn = std::move(s->idle.back());
    s->idle.pop_back();
    if (conn->check_alive())
      co_return result(std::error_code(), pg_lease(s, std::move(conn)));
    spdlog::info("store: dropped dead idle connection error=\"{}\"", conn->error_message());
    // Waiters only exist while nothing is idle, so this slot goes to no one.
    --s->open;
  }

  if (s->open < s->options.max_connections) {
    ++s->open;
  } else {
    if (s->waiters.size() >= s->options.max_waiters)
      co_return failed(errc::pool_exhausted);
    detail::waiter w(s->executor);
    w.timer.expires_at(deadline);
    s->waiters.push_back(&w);
    co_await w.timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!w.done) {
      std::erase(s->waiters, &w);
      // Not woken by the pool: the deadline passed, or the caller's coroutine was cancelled.
      co_return failed(clock::now() >= deadline ? errc::timeout : errc::shut_down);
    }
    if (w.ec)
      co_return result(w.ec, pg_lease());
    if (w.conn)
      co_return result(std::error_code(), pg_lease(s, std::move(w.conn)));
    // Woken with a free slot: open a connection in it below.
  }

  const bool probe = s->failures > 0;
  if (probe && (s->probing || clock::now() < s->next_connect)) {
    s->release_slot();
    co_return failed(errc::connection_failed);
  }
  if (probe)
    s->probing = true;
  auto conn = std::make_unique<pg_connection>(s->executor);
  const std::error_code ec = co_await conn->connect(s->options.connection, deadline);
  if (probe)
    s->probing = false;
  if (s->closed) {
    s->release_slot();
    co_return failed(errc::shut_down);
  }
  if (ec) {
    if (ec == errc::connection_failed)
      s->connect_failed(conn->error_message());
    s->release_slot();
    co_return result(ec, pg_lease());
  }
  s->connect_succeeded(*conn);
  co_return result(std::error_code(), pg_lease(s, std::move(conn)));
}

asio::awaitable<pg_result> pg_pool::execute(const pg_statement& statement,
                                            clock::time_point deadline) {
  auto [ec, lease] = co_await acquire(deadline);
  if (ec) {
    pg_result failed;
    failed.ec = ec;
    co_return failed;
  }
  co_return co_await lease->execute(statement, deadline);
}

asio::awaitable<std::error_code> pg_pool::ping(clock::time_point deadline) {
  const std::shared_ptr<detail::pool_state> s = state_;
  auto [ec, lease] = co_await acquire(deadline);
  if (ec)
    co_return ec;
  const pg_result r = co_await lease->execute("", deadline);
  if (r.ec == errc::connection_lost) {
    s->healthy = false;
  } else if (!r.ec) {
    s->healthy = true;
  }
  co_return r.ec;
}

}  // namespace sluice::store
