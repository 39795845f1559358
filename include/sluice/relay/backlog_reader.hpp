#pragma once

#include <chrono>

#include "sluice/core/async_event.hpp"
#include "sluice/relay/log_limiter.hpp"
#include "sluice/relay/relay_metrics.hpp"
#include "sluice/relay/relay_store.hpp"
#include "sluice/relay/schema_latch.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

// Measures the outbox (rows not yet marked published, the oldest one's age) every interval
// for the backlog gauges; it publishes nothing.
class backlog_reader {
 public:
  using clock = std::chrono::steady_clock;

  backlog_reader(std::chrono::milliseconds interval, std::chrono::milliseconds statement_timeout,
                 relay_store& store, schema_latch& schema, relay_metrics& metrics);
  backlog_reader(const backlog_reader&) = delete;
  backlog_reader& operator=(const backlog_reader&) = delete;

  boost::asio::awaitable<void> run();
  void stop();

 private:
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds statement_timeout_;
  relay_store& store_;
  schema_latch& schema_;
  relay_metrics& metrics_;
  bool stopping_ = false;
  async_event stop_;
  log_limiter error_log_;
};

}  // namespace sluice::relay
