#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <system_error>
#include <tuple>

#include "sluice/store/pg_connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::store {

struct pool_options {
  connection_options connection;    // DATABASE_URL, DB_CONNECT_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS
  std::size_t max_connections = 8;  // DB_POOL_MAX
  // Callers queued for a connection; one more fails at once with errc::pool_exhausted, so the
  // HTTP layer answers 503 instead of piling up requests.
  std::size_t max_waiters = 1024;
  // After a failed connect, new connects are refused (errc::connection_failed, no network)
  // for a jittered delay that doubles per failure from min to max: callers fail over to the
  // file buffer at once instead of each waiting on a dead server.
  std::chrono::milliseconds reconnect_backoff_min{100};
  std::chrono::milliseconds reconnect_backoff_max{5000};
};

namespace detail {
struct pool_state;
}

// A connection on loan from a pg_pool; returned when the lease is destroyed. A connection that
// broke, timed out or was left inside a transaction is dropped instead of returned.
class pg_lease {
 public:
  pg_lease() = default;
  pg_lease(pg_lease&& other) noexcept = default;
  pg_lease& operator=(pg_lease&& other) noexcept;
  ~pg_lease();

  pg_connection& operator*() const { return *conn_; }
  pg_connection* operator->() const { return conn_.get(); }
  explicit operator bool() const { return conn_ != nullptr; }

  void release();

 private:
  friend class pg_pool;
  pg_lease(std::shared_ptr<detail::pool_state> pool, std::unique_ptr<pg_connection> conn);

  std::shared_ptr<detail::pool_state> pool_;
  std::unique_ptr<pg_connection> conn_;
};

// Up to max_connections connections to one PostgreSQL, opened lazily on the caller's
// io_context. Not thread-safe: use it from the io_context's thread only.
class pg_pool {
 public:
  pg_pool(boost::asio::any_io_executor executor, pool_options options);
  ~pg_pool();
  pg_pool(const pg_pool&) = delete;
  pg_pool& operator=(const pg_pool&) = delete;

  // An idle connection, a new one, or the next one returned before `deadline`.
  // Errors: pool_exhausted (at once), connection_failed, timeout, shut_down.
  boost::asio::awaitable<std::tuple<std::error_code, pg_lease>> acquire(clock::time_point deadline);

  // One statement on a pooled connection, returned to the pool afterwards. A failed acquire
  // comes back as the result's ec (its message empty).
  boost::asio::awaitable<pg_result> execute(const pg_statement& statement,
                                            clock::time_point deadline);

  // One empty query round trip; updates healthy(). For readiness checks.
  boost::asio::awaitable<std::error_code> ping(clock::time_point deadline);

  // The outcome of the last connect attempt or ping.
  bool healthy() const;

  // Closes idle connections and fails current and future acquires with errc::shut_down;
  // leased connections are closed when their lease ends.
  void shutdown();

  struct counts {
    std::size_t open = 0;  // idle + leased + being opened
    std::size_t idle = 0;
    std::size_t waiting = 0;
  };
  counts stats() const;
  const pool_options& options() const;

 private:
  std::shared_ptr<detail::pool_state> state_;
};

}  // namespace sluice::store
