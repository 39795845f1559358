#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <string>

#include "sluice/buffer/buffer_log.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/push/db_gate.hpp"
#include "sluice/push/pending_index.hpp"
#include "sluice/push/stored_sink.hpp"
#include "sluice/store/message_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::push {

struct replayer_options {
  std::string name;                  // "failover" or "qos0": log and metric label
  std::size_t max_batch = 1000;      // FILE_BUFFER_MAX_BATCH
  std::size_t inflight_batches = 3;  // replay batches sent to PostgreSQL at once
  std::chrono::milliseconds deadline{5000};
  // QoS0 logs flush when bufferMax records are pending or the oldest waited bufferMs; a
  // failover log drains as fast as PostgreSQL takes it.
  bool flush_on_hints = false;
};

// Drains one buffer log into PostgreSQL in FIFO order, in large batches, idempotently (rows are
// keyed by message id, so a batch replayed twice after a crash stores nothing twice). Only
// acknowledges records PostgreSQL has committed. Records PostgreSQL rejects for their data go to
// the log's failed/ with the reason. While PostgreSQL is unavailable it backs off and retries.
class buffer_replayer {
 public:
  buffer_replayer(boost::asio::any_io_executor executor, buffer::buffer_log& log,
                  store::message_store& store, pending_index& index, db_gate& gate,
                  metrics::registry& metrics, replayer_options options);
  buffer_replayer(const buffer_replayer&) = delete;
  buffer_replayer& operator=(const buffer_replayer&) = delete;

  void start();
  boost::asio::awaitable<void> stop();

  // Records were appended; for QoS0 with the request's flush hints.
  void appended(std::chrono::milliseconds buffer_ms = {}, std::size_t buffer_max = 0);

  // Re-checks at once what it waits for (the schema became ready).
  void wake();

  // Called on the loop each time the log is found empty.
  std::function<void()> on_drained;
  // Called on the loop after each batch committed.
  std::function<void()> on_progress;

  double replay_rate_per_second() const;  // over the last 10 s

  // Where committed records go next (the relay); may stay unset.
  void set_sink(stored_sink* sink) { sink_ = sink; }

 private:
  boost::asio::awaitable<void> run();
  struct inflight_batch {
    std::vector<buffer::buffered_record> records;  // positions (their messages moved to msgs)
    std::vector<message> msgs;
    store::insert_result res;
    bool done = false;  // the insert completed (res is set)
  };
  boost::asio::awaitable<bool> replay_window();
  boost::asio::awaitable<void> insert(inflight_batch& b);
  void committed(inflight_batch& b);
  boost::asio::awaitable<bool> quarantine_rejected(inflight_batch& b);
  void reset_hints();
  void hand_to_sink(std::vector<message>& msgs, const std::vector<store::insert_outcome>& outcomes);

  boost::asio::any_io_executor executor_;
  buffer::buffer_log& log_;
  store::message_store& store_;
  pending_index& index_;
  db_gate& gate_;
  replayer_options options_;
  stored_sink* sink_ = nullptr;
  async_event wake_;          // appends and stop
  async_event backoff_wake_;  // stop only
  async_event stopped_;
  bool stopping_ = false;
  bool running_ = false;
  std::chrono::milliseconds backoff_{0};
  std::size_t flush_threshold_;
  std::chrono::steady_clock::time_point flush_deadline_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::size_t>> recent_;
  metrics::counter& replayed_;
  metrics::counter& duplicates_;
  metrics::counter& rejected_;
  metrics::counter& failures_;
  metrics::histogram& batch_rows_;
  metrics::histogram& insert_seconds_;
};

}  // namespace sluice::push
