#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "sluice/buffer/record_position.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/push/pending_index.hpp"
#include "sluice/push/record_log.hpp"
#include "sluice/push/stored_sink.hpp"
#include "sluice/store/message_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::push {

struct replayer_options {
  std::string name;  // "failover" or "qos0": log and metric label
  pending_log log = pending_log::failover;
  std::size_t max_batch = 1000;      // FILE_BUFFER_MAX_BATCH
  std::size_t inflight_batches = 3;  // replay batches sent to PostgreSQL at once
  std::chrono::milliseconds deadline{5000};
  // QoS0 logs flush when bufferMax records are pending or the oldest waited bufferMs; a
  // failover log drains as fast as PostgreSQL takes it.
  bool flush_on_hints = false;
  // A record whose insert timed out this many times, over at least poisoned_span, while
  // PostgreSQL answered probes (and the records before it committed) is set aside to failed/:
  // a row lock held that long must not hold the whole log, while a server that is slow for a
  // while (a checkpoint, an I/O stall) sets nothing aside.
  int poisoned_after = 3;
  std::chrono::milliseconds poisoned_span{30'000};
};

// What the replayer tells its owner (push_service), on the loop.
struct replay_events {
  std::function<void()> committed;    // a batch committed: PostgreSQL works
  std::function<void()> unavailable;  // a batch failed and PostgreSQL does not answer probes
  std::function<void()> drained;      // the log was found empty
  // Whether PostgreSQL answers a cheap query on a connection of its own: tells a slow
  // statement from a dead server. Unset: every failure counts as unavailable.
  std::function<boost::asio::awaitable<bool>()> db_alive;
};

// Drains one buffer log into PostgreSQL in FIFO order, in large batches, idempotently (rows are
// keyed by message id, so a batch replayed twice after a crash stores nothing twice). Only
// acknowledges records PostgreSQL has committed. Records PostgreSQL rejects for their data go to
// the log's failed/ with the reason. While PostgreSQL is unavailable it backs off and retries;
// when PostgreSQL is up but one batch keeps timing out, it replays that batch record by record
// and sets aside the record that still times out (poisoned_after).
class buffer_replayer {
 public:
  buffer_replayer(boost::asio::any_io_executor executor, record_log& log,
                  store::message_writer& store, pending_index& index, metrics::registry& metrics,
                  replayer_options options);
  buffer_replayer(const buffer_replayer&) = delete;
  buffer_replayer& operator=(const buffer_replayer&) = delete;

  void start(replay_events events);
  boost::asio::awaitable<void> stop();

  // Nothing is written before the schema is in place.
  void schema_ready();

  // Records were appended; for QoS0 with the request's flush hints.
  void appended(std::chrono::milliseconds buffer_ms = {}, std::size_t buffer_max = 0);
  // Replays everything pending now, whatever the hints (records moved back from failed/, or a
  // durable push waiting for a QoS0 record with its transactionId).
  void flush_now();
  // Looks at the log again now (PostgreSQL is back: a replay may find it empty).
  void wake();

  double replay_rate_per_second() const;  // over the last 10 s
  std::uint64_t set_aside_total() const { return static_cast<std::uint64_t>(set_aside_.value()); }

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
  enum class window_result { progressed, stalled };
  boost::asio::awaitable<window_result> replay_window();
  boost::asio::awaitable<void> insert(inflight_batch& b);
  void committed(inflight_batch& b);
  boost::asio::awaitable<bool> quarantine_rejected(inflight_batch& b);
  boost::asio::awaitable<bool> failed_while_alive(inflight_batch& b);
  boost::asio::awaitable<bool> set_aside(inflight_batch& b, std::size_t index, std::string reason);
  boost::asio::awaitable<bool> reindex();
  // Waits the next, doubled backoff (cut short only by stop()).
  boost::asio::awaitable<void> back_off();
  void reset_hints();
  bool flush_due(std::uint64_t pending) const;
  void hand_to_sink(std::vector<message>& msgs, const std::vector<store::insert_outcome>& outcomes);

  boost::asio::any_io_executor executor_;
  record_log& log_;
  store::message_writer& store_;
  pending_index& index_;
  replayer_options options_;
  replay_events events_;
  stored_sink* sink_ = nullptr;
  async_event wake_;          // appends, flushes, the schema, stop
  async_event backoff_wake_;  // stop only
  async_event stopped_;
  bool schema_ready_ = false;
  bool stopping_ = false;
  bool running_ = false;
  std::chrono::milliseconds backoff_{0};
  std::size_t flush_threshold_;
  std::chrono::steady_clock::time_point flush_deadline_;
  // Set after a batch timed out while PostgreSQL answered probes: batches of one record until
  // the read position passes the end of that batch.
  std::optional<buffer::record_position> isolate_through_;
  int poisoned_strikes_ = 0;  // timeouts of the one record being isolated
  std::chrono::steady_clock::time_point first_strike_;
  std::uint64_t unreadable_seen_ = 0;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::size_t>> recent_;
  metrics::counter& replayed_;
  metrics::counter& duplicates_;
  metrics::counter& rejected_;
  metrics::counter& failures_;
  metrics::counter& set_aside_;
  metrics::histogram& batch_rows_;
  metrics::histogram& insert_seconds_;
};

}  // namespace sluice::push
