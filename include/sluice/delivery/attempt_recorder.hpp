#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "sluice/core/async_event.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

// One delivery attempt as GET /api/v1/messages/{id}/deliveries shows it.
struct attempt_record {
  uuid message_id;
  std::string queue;
  std::string subscription;
  std::uint32_t attempt = 1;
  std::int64_t attempted_ms = 0;  // Unix ms when the request was sent
  std::string outcome;            // delivered, retry, dead_lettered, deferred
  std::optional<int> status;      // nullopt: no response
  double latency_ms = 0;
  std::string error;  // "" when there is none
};

struct attempt_recorder_options {
  std::size_t queue_max = 100'000;  // DELIVERY_ATTEMPTS_QUEUE_MAX; beyond it records are dropped
  // The same bound in bytes (queued_bytes()): beyond it records are dropped too.
  std::size_t queue_max_bytes = 64 * 1024 * 1024;
  std::size_t batch_max = 1'000;  // rows per INSERT
  std::chrono::milliseconds flush_interval{100};
  std::chrono::hours retention{72};  // DELIVERY_ATTEMPTS_RETENTION_HOURS
  std::chrono::milliseconds prune_interval{60'000};
  std::size_t prune_batch = 1'000;  // rows per DELETE, so pruning never holds locks for long
  std::chrono::milliseconds statement_timeout{5'000};
  // After a failed write the batch is kept and written again this much later.
  std::chrono::milliseconds retry_delay{1'000};
};

// Writes attempt records in batches (group commit, like pushes): record() only queues, a loop
// writes what accumulated in one statement. Recording is observability, not the message: when
// the queue is full or PostgreSQL is down past the bound, records are dropped and counted
// (sluice_delivery_attempt_records_dropped_total), never the delivery held up. The same loop
// deletes rows older than the retention. Loop-thread only.
class attempt_recorder {
 public:
  attempt_recorder(store::pg_pool& pool, metrics::registry& metrics,
                   attempt_recorder_options options);
  attempt_recorder(const attempt_recorder&) = delete;
  attempt_recorder& operator=(const attempt_recorder&) = delete;

  void record(attempt_record r);

  // co_spawn it; returns after stop() once what was queued is written (bounded by the
  // statement timeout).
  boost::asio::awaitable<void> run();
  void stop();

  std::size_t queued() const { return queue_.size(); }
  // The bytes the queued records hold (their texts and the record itself).
  std::size_t queued_bytes() const { return queued_bytes_; }

 private:
  using clock = std::chrono::steady_clock;

  // Writes up to batch_max records from the front in one statement; false when it failed and
  // the records are still queued.
  boost::asio::awaitable<bool> write_batch();
  // One DELETE of at most prune_batch expired rows; true when it was full (more may be left).
  boost::asio::awaitable<bool> prune_batch();

  store::pg_pool& pool_;
  attempt_recorder_options options_;
  std::deque<attempt_record> queue_;
  std::size_t queued_bytes_ = 0;
  clock::time_point first_queued_{};  // when the oldest queued record arrived
  async_event wake_;
  bool stopping_ = false;
  bool failing_ = false;  // the last write failed: logged once per outage
  metrics::counter& written_;
  metrics::counter& dropped_;
  metrics::counter& pruned_;
};

}  // namespace sluice::delivery
