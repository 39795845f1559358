#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sluice/core/async_event.hpp"
#include "sluice/core/log_throttle.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/push/buffer_replayer.hpp"
#include "sluice/push/db_gate.hpp"
#include "sluice/push/failover_mode.hpp"
#include "sluice/push/pending_index.hpp"
#include "sluice/push/push_batcher.hpp"
#include "sluice/push/push_request.hpp"
#include "sluice/push/record_log.hpp"
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
  // Whether PostgreSQL answers a cheap query on a connection the push path does not use: a
  // round trip that timed out while this says yes was slow (a lock), not a dead server, and is
  // answered 503 instead of sending every push to the file buffer. Unset: every failed round
  // trip fails over.
  std::function<boost::asio::awaitable<bool>()> db_alive;
  // Brings the schema up to date; unset: store::apply_migrations on the pool. (Unit tests,
  // which have no PostgreSQL, pass their own.)
  std::function<boost::asio::awaitable<std::error_code>()> prepare_schema;
  // A replay record that keeps timing out while PostgreSQL answers probes is set aside after
  // timing out for this long (buffer_replayer.hpp: poisoned_span).
  std::chrono::milliseconds poisoned_span{30'000};
  // How long a handing-back push waits for the last failover appends to be replayed before it
  // goes behind them into the log.
  std::chrono::milliseconds handoff_wait{1000};
};

struct log_status {
  buffer::buffer_stats stats;
  double replay_rate_per_second = 0;
  std::uint64_t set_aside_total = 0;  // records the replayer moved to failed/ for timing out
};

struct buffers_status {
  bool db_healthy = false;
  bool schema_ready = false;
  bool failover_active = false;
  push_mode mode = push_mode::failing_over;
  std::size_t pending_index_entries = 0;
  log_status failover;
  log_status qos0;
};

// The durable push path. A push is stored in PostgreSQL through the batcher; when PostgreSQL
// is unavailable it goes to the failover log instead, and while that log has records every
// new push goes behind them, so per-partition order is the order of acknowledgement
// (failover_mode.hpp has the modes). QoS0 pushes go to their own log and are answered once
// written. Replayers drain both logs.
//
// Duplicates (same queue + transactionId): a retry is answered with the original's id only
// once the original is as durable as its own answer claims; until then it waits for the
// original's outcome (pending_index: `writing`), and if the original failed it is written
// itself. Every id in an answer is the id of a message stored or buffered.
class push_service {
 public:
  push_service(boost::asio::any_io_executor executor, store::pg_pool& pool,
               store::message_writer& store, record_log& failover, record_log& qos0,
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
  // Called once, on the loop, when the schema is migrated (gate().schema_ready() turns true).
  // Call before start().
  void on_schema_ready(std::function<void()> f) { on_schema_ready_ = std::move(f); }
  const db_gate& gate() const { return gate_; }

  // Moves up to filter.max_records records of failed/ that match `filter` back into their logs
  // (the failover log's first, then QoS0's): how many were retried and how many matching
  // records are left.
  boost::asio::awaitable<buffer::retry_result> retry_failed(buffer::retry_filter filter);

 private:
  struct classified;
  boost::asio::awaitable<void> watch_db();
  boost::asio::awaitable<void> index_log(record_log& log, pending_log which);
  boost::asio::awaitable<bool> classify(std::vector<message>& items, bool qos0,
                                        std::chrono::steady_clock::time_point until,
                                        classified& out);
  boost::asio::awaitable<push_outcome> append_to_log(record_log& log, buffer_replayer& replayer,
                                                     std::vector<message> batch,
                                                     push_outcome outcome,
                                                     const std::vector<std::size_t>& slots,
                                                     std::optional<qos0_options> hints,
                                                     const std::vector<message>& owned);
  boost::asio::awaitable<push_outcome> store_direct(std::vector<message>& to_write,
                                                    push_outcome out,
                                                    const std::vector<std::size_t>& slots,
                                                    const std::vector<message>& owned,
                                                    bool& failed_over);
  boost::asio::awaitable<bool> db_alive();
  void apply(push_event e);
  void forget(const std::vector<message>& keys);

  boost::asio::any_io_executor executor_;
  store::pg_pool& pool_;
  store::message_writer& store_;
  record_log& failover_;
  record_log& qos0_;
  push_service_options options_;
  failover_mode mode_;
  db_gate gate_;  // what others read of mode_ and the schema; written by apply() only
  pending_index index_;
  push_batcher batcher_;
  buffer_replayer failover_replayer_;
  buffer_replayer qos0_replayer_;
  uuid_v7_generator ids_;
  stored_sink* sink_ = nullptr;
  std::function<void()> on_schema_ready_;
  std::size_t failover_appends_in_flight_ = 0;
  async_event mode_changed_;
  async_event replay_progress_;  // the failover replayer committed a batch
  bool stopping_ = false;
  bool watcher_running_ = false;
  async_event watcher_wake_;  // mode changes and stop
  async_event watcher_done_;
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
  log_throttle append_failure_log_;
  metrics::family<metrics::counter>& transitions_;
};

}  // namespace sluice::push
