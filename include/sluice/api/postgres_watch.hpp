#pragma once

#include <chrono>
#include <system_error>

#include "sluice/core/async_event.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::api {

// Pings PostgreSQL every `interval`, each ping bounded by `timeout`, so readiness and /metrics
// answer from a recent round trip without making one of their own: a flood of probes costs no
// connections, and a hung server holds one probe for `timeout`, not every probe. Give it a pool
// the push path does not use, so a probe never takes a connection a push is waiting for.
// Everything runs on the loop.
class postgres_watch {
 public:
  using clock = std::chrono::steady_clock;
  struct options {
    std::chrono::milliseconds interval{1000};
    std::chrono::milliseconds timeout{1000};
  };
  struct state {
    bool probed = false;    // a ping has completed
    std::error_code error;  // of the last ping
  };

  postgres_watch(boost::asio::any_io_executor executor, store::pg_pool& pool, options o);
  postgres_watch(const postgres_watch&) = delete;
  postgres_watch& operator=(const postgres_watch&) = delete;

  // Completes after the first ping (so the first readiness answer is already informed), then
  // keeps pinging until stop().
  boost::asio::awaitable<void> start();
  // Completes once the ping in flight, if any, has ended.
  boost::asio::awaitable<void> stop();

  const state& last() const { return last_; }

 private:
  boost::asio::awaitable<void> ping();
  boost::asio::awaitable<void> run();

  boost::asio::any_io_executor executor_;
  store::pg_pool& pool_;
  options options_;
  boost::asio::steady_timer timer_;
  state last_;
  bool running_ = false;
  bool stopping_ = false;
  async_event stopped_;
};

}  // namespace sluice::api
