#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sluice/buffer/buffer_log.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/push/buffer_replayer.hpp"
#include "sluice/push/db_gate.hpp"
#include "sluice/push/pending_index.hpp"
#include "sluice/push/push_batcher.hpp"
#include "sluice/push/push_request.hpp"
#include "sluice/push/stored_sink.hpp"
#include "sluice/store/message_store.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::push {

enum class item_status { stored, buffered, duplicate };
const char* to_string(item_status s);

struct push_outcome {
  // 0 = accepted (201); otherwise the HTTP status of the error.
  int error_status = 0;
  std::string error_code;
  std::string error_message;
  int retry_after_seconds = 0;

  bool qos0 = false;
  bool db_healthy = false;
  struct item {
    uuid id;
    std::optional<std::string> transaction_id;
    item_status status;
  };
  std::vector<item> items;  // in request order
};

struct push_service_options {
  batcher_options batcher;
  std::size_t replay_batch = 1000;
  std::chrono::milliseconds deadline{5000};
  // Queue names are the clients' to choose: past this many distinct ones, pushes are counted
  // under queue="(other)", which no queue can be called, so /metrics stays bounded.
  std::size_t max_queue_labels = 1000;
};

struct log_status {
  buffer::buffer_stats stats;
  double replay_rate_per_second = 0;
};

struct buffers_status {
  bool db_healthy = false;
  bool schema_ready = false;
  bool failover_active = false;
  std::size_t pending_index_entries = 0;
  log_status failover;
  log_status qos0;
};

// The durable push path. A push is stored in PostgreSQL through the batcher; when PostgreSQL
// is unavailable it goes to the failover log instead, and while that log has records every
// new push goes behind them, so per-partition order is the order of acknowledgement. QoS0
// pushes go to their own log and are answered once written. Replayers drain both logs.
class push_service {
 public:
  push_service(boost::asio::any_io_executor executor, store::pg_pool& pool,
               store::message_store& store, buffer::buffer_log& failover, buffer::buffer_log& qos0,
               metrics::registry& metrics, push_service_options options);
  push_service(const push_service&) = delete;
  push_service& operator=(const push_service&) = delete;

  // Rebuilds the duplicate index from what the logs hold, then starts the schema keeper and the
  // replayers. Call once, on the loop.
  boost::asio::awaitable<void> start();
  boost::asio::awaitable<void> stop();

  boost::asio::awaitable<push_outcome> push(push_request request);

  buffers_status status() const;

  // Committed new rows are handed to `sink` (the relay). Call before start().
  void set_sink(stored_sink* sink);
  const db_gate& gate() const { return gate_; }

  // Moves up to filter.max_records records of failed/ that match `filter` back into their logs
  // (the failover log's first, then QoS0's): how many were retried and how many matching
  // records are left.
  boost::asio::awaitable<buffer::retry_result> retry_failed(buffer::retry_filter filter);

 private:
  boost::asio::awaitable<void> keep_schema();
  boost::asio::awaitable<void> index_log(buffer::buffer_log& log);
  boost::asio::awaitable<push_outcome> append_to_log(buffer::buffer_log& log,
                                                     buffer_replayer& replayer,
                                                     std::vector<message> batch,
                                                     push_outcome outcome,
                                                     const std::vector<std::size_t>& slots,
                                                     std::optional<qos0_options> hints);
  // Durable pushes go straight to PostgreSQL again once the schema is ready and the failover
  // log is empty.
  void leave_failover_if_drained();

  boost::asio::any_io_executor executor_;
  store::pg_pool& pool_;
  store::message_store& store_;
  buffer::buffer_log& failover_;
  buffer::buffer_log& qos0_;
  push_service_options options_;
  db_gate gate_;
  pending_index index_;
  push_batcher batcher_;
  buffer_replayer failover_replayer_;
  buffer_replayer qos0_replayer_;
  uuid_v7_generator ids_;
  stored_sink* sink_ = nullptr;
  // True from start-up (until the schema is ready and the log is drained) and from a failed
  // PostgreSQL round trip until the failover log is drained again.
  bool failover_active_ = true;
  std::size_t failover_appends_in_flight_ = 0;
  // Set when the replayer caught up while appends were in flight: new durable pushes wait
  // for those to be replayed, then go straight to PostgreSQL.
  bool handoff_ = false;
  async_event handoff_done_;
  async_event replay_progress_;  // the failover replayer committed a batch
  bool stopping_ = false;
  bool schema_keeper_running_ = false;
  async_event schema_keeper_done_;
  metrics::registry& metrics_;
  metrics::family<metrics::counter>& items_total_;
  // sluice_push_items_total's children per queue, by item_status: found without building label
  // vectors on every push.
  struct queue_counters {
    metrics::counter* by_status[3];
  };
  std::unordered_map<std::string, queue_counters> item_counters_;
  std::optional<queue_counters> other_queues_counters_;
  queue_counters& counters_for(const std::string& queue);
  metrics::counter& failovers_;
};

}  // namespace sluice::push
