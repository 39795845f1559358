#pragma once

#include <chrono>
#include <functional>

#include "sluice/core/async_event.hpp"
#include "sluice/relay/log_limiter.hpp"
#include "sluice/relay/queue_modes.hpp"
#include "sluice/relay/schema_latch.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

// Keeps the queue_modes cache in step with sluice_queues, which other instances change too:
// reloads it every interval (sooner while it was never loaded, since publishing waits for it).
class queue_mode_follower {
 public:
  using clock = std::chrono::steady_clock;

  queue_mode_follower(queue_modes& modes, std::chrono::milliseconds interval,
                      std::chrono::milliseconds statement_timeout, schema_latch& schema);
  queue_mode_follower(const queue_mode_follower&) = delete;
  queue_mode_follower& operator=(const queue_mode_follower&) = delete;

  // Runs once, when the cache is loaded the first time.
  void on_loaded(std::function<void()> handler) { on_loaded_ = std::move(handler); }

  boost::asio::awaitable<void> run();
  void stop();

 private:
  queue_modes& modes_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds statement_timeout_;
  schema_latch& schema_;
  std::function<void()> on_loaded_;
  bool stopping_ = false;
  async_event stop_;
  log_limiter error_log_;
};

}  // namespace sluice::relay
