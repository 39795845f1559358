#include "sluice/push/buffer_replayer.hpp"

#include <algorithm>
#include <limits>
#include <system_error>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

namespace sluice::push {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds min_backoff{100};
constexpr std::chrono::milliseconds max_backoff{5000};
constexpr auto forever = clock::time_point::max();

buffer_replayer::buffer_replayer(asio::any_io_executor executor, record_log& log,
                                 store::message_writer& store, pending_index& index,
                                 metrics::registry& metrics, replayer_options options)
    : executor_(std::move(executor)),
      log_(log),
      store_(store),
      index_(index),
      options_(std::move(options)),
      replayed_(metrics
                    .add_counter("sluice_replay_records_total",
                                 "Buffered records committed to PostgreSQL.", {"log"})
                    .with({options_.name})),
      duplicates_(
          metrics
              .add_counter("sluice_replay_duplicates_total",
                           "Buffered records PostgreSQL already had (dropped, not stored twice).",
                           {"log"})
              .with({options_.name})),
      rejected_(
          metrics
              .add_counter("sluice_replay_rejected_total",
                           "Buffered records PostgreSQL refused for their data, moved to failed/.",
                           {"log"})
              .with({options_.name})),
      failures_(metrics
                    .add_counter("sluice_replay_failures_total",
                                 "Replay batches that failed because PostgreSQL was unavailable.",
                                 {"log"})
                    .with({options_.name})),
      set_aside_(metrics
                     .add_counter("sluice_replay_set_aside_total",
                                  "Buffered records moved to failed/ because their insert kept "
                                  "timing out while PostgreSQL answered probes.",
                                  {"log"})
                     .with({options_.name})),
      batch_rows_(metrics
                      .add_histogram("sluice_db_batch_rows",
                                     "Rows per PostgreSQL insert round trip.", {"source"},
                                     metrics::size_buckets())
                      .with({options_.name})),
      insert_seconds_(metrics
                          .add_histogram("sluice_db_insert_duration_seconds",
                                         "Duration of one PostgreSQL insert round trip.",
                                         {"source"}, metrics::latency_buckets())
                          .with({options_.name})) {
  reset_hints();
  // Records recovered at start-up flush at once.
  flush_deadline_ = clock::now();
}

void buffer_replayer::hand_to_sink(std::vector<message>& msgs,
                                   const std::vector<store::insert_outcome>& outcomes) {
  if (sink_ == nullptr)
    return;
  std::vector<message> fresh;
  fresh.reserve(msgs.size());
  for (std::size_t i = 0; i < msgs.size() && i < outcomes.size(); ++i) {
    if (outcomes[i].status == store::insert_status::stored)
      fresh.push_back(std::move(msgs[i]));
  }
  if (!fresh.empty())
    sink_->stored(std::move(fresh));
}

void buffer_replayer::reset_hints() {
  flush_threshold_ = std::numeric_limits<std::size_t>::max();
  flush_deadline_ = forever;
}

bool buffer_replayer::flush_due(std::uint64_t pending) const {
  return !options_.flush_on_hints || pending >= flush_threshold_ || clock::now() >= flush_deadline_;
}

void buffer_replayer::start(replay_events events) {
  events_ = std::move(events);
  running_ = true;
  asio::co_spawn(executor_, run(), [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::critical("replay[{}]: stopped by an exception: {}", options_.name, ex.what());
      }
    }
    running_ = false;
    stopped_.notify_all();
  });
}

asio::awaitable<void> buffer_replayer::stop() {
  stopping_ = true;
  wake_.notify_all();
  backoff_wake_.notify_all();
  while (running_)
    co_await stopped_.wait_until(forever);
}

void buffer_replayer::schema_ready() {
  schema_ready_ = true;
  wake_.notify_all();
}

void buffer_replayer::appended(std::chrono::milliseconds buffer_ms, std::size_t buffer_max) {
  if (options_.flush_on_hints) {
    flush_threshold_ = std::min(flush_threshold_, std::max<std::size_t>(buffer_max, 1));
    flush_deadline_ = std::min(flush_deadline_, clock::now() + buffer_ms);
  }
  wake_.notify_all();
}

void buffer_replayer::flush_now() {
  flush_deadline_ = clock::now();
  wake_.notify_all();
}

void buffer_replayer::wake() {
  wake_.notify_all();
}

double buffer_replayer::replay_rate_per_second() const {
  const auto horizon = clock::now() - std::chrono::seconds(10);
  std::size_t total = 0;
  for (const auto& [when, n] : recent_) {
    if (when >= horizon)
      total += n;
  }
  return static_cast<double>(total) / 10.0;
}

// Every wait below is for the event that changes what the loop decides on (an append, a flush,
// the schema, stop), with a deadline only where time itself is the event (bufferMs, backoff).
// The state is re-read after each wake-up, so a notification sent while the loop was busy is
// not needed: its effect is already in the state.
asio::awaitable<void> buffer_replayer::run() {
  while (!stopping_) {
    if (!schema_ready_) {
      co_await wake_.wait_until(forever);
      continue;
    }
    const auto stats = log_.stats();
    if (stats.unreadable_ranges_total != unreadable_seen_) {
      if (co_await reindex()) {
        unreadable_seen_ = stats.unreadable_ranges_total;
      } else {
        co_await back_off();
      }
      continue;
    }
    if (stats.pending_records == 0) {
      reset_hints();
      if (events_.drained)
        events_.drained();
      // drained() may have started something that appends: look again before sleeping.
      if (log_.stats().pending_records == 0 && !stopping_)
        co_await wake_.wait_until(forever);
      continue;
    }
    if (!flush_due(stats.pending_records)) {
      co_await wake_.wait_until(flush_deadline_);
      continue;
    }
    const auto result = co_await replay_window();
    if (result == window_result::stalled) {
      // New appends do not cut the backoff short: under load they arrive constantly, and each
      // would become one more attempt against a database that is down.
      co_await back_off();
    } else {
      backoff_ = std::chrono::milliseconds(0);
    }
  }
}

asio::awaitable<void> buffer_replayer::back_off() {
  backoff_ = std::clamp(backoff_ * 2, min_backoff, max_backoff);
  co_await backoff_wake_.wait_until(clock::now() + backoff_);
}

// A sliding window over the log: up to `depth` inserts are in flight, and as soon as the oldest
// commits the next batch is read and sent, so PostgreSQL always has work while sluice reads and
// decodes. Results are applied in log order, so the ack cursor only ever moves over committed
// records. If a batch fails, the ones after it that committed anyway are read again after the
// rewind and come back as duplicates: nothing is stored twice. Runs until the log is read to
// its end (QoS0 too: a flush takes every record pending, in batches of max_batch, so none is
// left behind for the next append to pick up), stop() or a failure.
asio::awaitable<buffer_replayer::window_result> buffer_replayer::replay_window() {
  std::size_t batch = options_.max_batch;
  std::size_t depth = std::max<std::size_t>(options_.inflight_batches, 1);
  if (isolate_through_) {
    batch = 1;
    depth = 1;
  }
  // Appends from now on set the next flush's hints.
  if (options_.flush_on_hints)
    reset_hints();

  std::deque<inflight_batch> window;  // log order; deque: pushes keep references valid
  async_event finished;               // an insert of the window completed
  bool at_end = false;
  bool read_failed = false;  // stop reading; what is in the window is still applied
  bool progressed = false;
  bool failed = false;  // an insert failed: the log was rewound, later results are dropped
  std::exception_ptr error;
  try {
    for (;;) {
      while (!failed && !read_failed && !at_end && !stopping_ && window.size() < depth) {
        auto [read_ec, records] = co_await log_.read_batch(batch);
        if (read_ec) {
          spdlog::error("replay[{}]: reading the buffer failed (retried later): {}", options_.name,
                        read_ec.message());
          read_failed = true;
          break;
        }
        if (records.empty()) {
          at_end = true;
          break;
        }
        inflight_batch& next = window.emplace_back();
        next.records = std::move(records);
        next.msgs.reserve(next.records.size());
        for (auto& r : next.records)
          next.msgs.push_back(std::move(r.msg));
        auto on_done = [&next, &finished](std::exception_ptr e) {
          if (e) {  // never acknowledge what an insert that threw may not have stored
            next.res.ec = std::make_error_code(std::errc::io_error);
            next.res.message = "replay insert failed with an exception";
          }
          next.done = true;
          finished.notify_all();
        };
        asio::co_spawn(executor_, insert(next), on_done);
      }
      if (window.empty())
        break;
      while (!window.front().done)
        co_await finished.wait_until(forever);
      inflight_batch& b = window.front();
      if (!failed) {
        const auto failure = b.res.failure();
        if (failure == store::failure_kind::none) {
          committed(b);
          progressed = true;
        } else if (failure == store::failure_kind::rejected && b.res.rejected_index &&
                   *b.res.rejected_index < b.msgs.size()) {
          failed = true;  // the later batches are read again after the bad record
          progressed = co_await quarantine_rejected(b) || progressed;
        } else {
          failed = true;
          log_.rewind();
          failures_.inc();
          const std::string why = b.res.message.empty() ? b.res.ec.message() : b.res.message;
          if (store::is_slow_statement(b.res.ec, b.res.sqlstate) &&
              co_await failed_while_alive(b)) {
            // Not an outage: no mode change. The backoff still paces the next attempt.
          } else {
            if (failure == store::failure_kind::unavailable && events_.unavailable)
              events_.unavailable();
            spdlog::warn("replay[{}]: PostgreSQL unavailable, {} records wait: {}", options_.name,
                         log_.stats().pending_records, why);
          }
        }
      }
      // After a failure the rest of the window only has to finish: its memory is in use.
      window.pop_front();
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    // Inserts still running write into the window: it must outlive them.
    while (std::any_of(window.begin(), window.end(), [](const auto& w) { return !w.done; }))
      co_await finished.wait_until(forever);
    log_.rewind();
    std::rethrow_exception(error);
  }
  if (read_failed && !failed) {
    // The read position is past records that were never sent: read them again next time.
    log_.rewind();
  }
  const bool read_to_the_end = at_end && !failed && !read_failed;
  if (options_.flush_on_hints && !read_to_the_end) {
    // The flush this window made is owed until its records are committed: the next attempt
    // (after the backoff) must not wait for hints that were reset when it started.
    flush_deadline_ = std::min(flush_deadline_, clock::now());
  }
  if (progressed || !(failed || read_failed))
    co_return window_result::progressed;
  co_return window_result::stalled;
}

asio::awaitable<void> buffer_replayer::insert(inflight_batch& b) {
  const auto started = clock::now();
  b.res = co_await store_.insert_batch(b.msgs, started + options_.deadline);
  insert_seconds_.observe(std::chrono::duration<double>(clock::now() - started).count());
  batch_rows_.observe(static_cast<double>(b.msgs.size()));
}

void buffer_replayer::committed(inflight_batch& b) {
  if (events_.committed)
    events_.committed();
  std::size_t dup = 0;
  for (const auto& outcome : b.res.items) {
    dup += outcome.status == store::insert_status::duplicate ? 1 : 0;
  }
  if (auto ec = log_.acknowledge(b.records.back().position)) {
    spdlog::error("replay[{}]: acknowledge failed: {}", options_.name, ec.message());
  }
  if (isolate_through_ && b.records.back().position >= *isolate_through_) {
    isolate_through_.reset();
    spdlog::info("replay[{}]: past the batch that timed out; replaying in full batches again",
                 options_.name);
  }
  poisoned_strikes_ = 0;
  for (std::size_t i = 0; i < b.msgs.size() && i < b.res.items.size(); ++i)
    index_.committed(b.msgs[i], b.res.items[i].id);
  replayed_.inc(static_cast<double>(b.msgs.size() - dup));
  duplicates_.inc(static_cast<double>(dup));
  hand_to_sink(b.msgs, b.res.items);
  recent_.emplace_back(clock::now(), b.msgs.size());
  while (!recent_.empty() && recent_.front().first < clock::now() - std::chrono::seconds(10)) {
    recent_.pop_front();
  }
  spdlog::debug("replay[{}]: committed {} records ({} duplicates)", options_.name, b.msgs.size(),
                dup);
}

// A batch ran out of time, which looks like PostgreSQL gone, but it may only be slow: a row lock
// held past the statement timeout fails every batch that touches the row, while every other
// statement works. Failing over for that would send all pushes to disk while PostgreSQL is healthy,
// and the replay would hit the same lock for ever. So: when PostgreSQL answers a probe, replay the
// batch record by record, and set aside the one record that keeps timing out. True when
// PostgreSQL answered (retry soon, without backoff).
asio::awaitable<bool> buffer_replayer::failed_while_alive(inflight_batch& b) {
  if (!events_.db_alive || !co_await events_.db_alive())
    co_return false;
  if (b.records.size() > 1) {
    isolate_through_ = b.records.back().position;
    poisoned_strikes_ = 0;
    spdlog::warn(
        "replay[{}]: a batch of {} records timed out while PostgreSQL answers probes; replaying "
        "them one at a time",
        options_.name, b.records.size());
    co_return true;
  }
  if (!isolate_through_)
    isolate_through_ = b.records.back().position;
  const auto now = clock::now();
  if (poisoned_strikes_ == 0)
    first_strike_ = now;
  ++poisoned_strikes_;
  if (poisoned_strikes_ < options_.poisoned_after || now - first_strike_ < options_.poisoned_span)
    co_return true;
  poisoned_strikes_ = 0;
  const std::string why = b.res.message.empty() ? b.res.ec.message() : b.res.message;
  const bool moved = co_await set_aside(
      b, 0,
      "the insert timed out " + std::to_string(options_.poisoned_after) + " times over " +
          std::to_string(
              std::chrono::duration_cast<std::chrono::seconds>(now - first_strike_).count()) +
          " s while PostgreSQL answered probes (a lock held past the statement timeout?): " + why);
  if (moved)
    set_aside_.inc();
  co_return moved;
}

// Moves record `index` of `b` to failed/ with `reason` and acknowledges it; the records after
// it are read again (the log is rewound). False when failed/ could not take it: it stays
// pending.
asio::awaitable<bool> buffer_replayer::set_aside(inflight_batch& b, std::size_t index,
                                                 std::string reason) {
  spdlog::error("replay[{}]: record {} (queue {}) set aside to failed/: {}", options_.name,
                b.msgs[index].id.to_string(), b.msgs[index].queue, reason);
  std::vector<message> records{b.msgs[index]};
  const auto q_ec = co_await log_.quarantine_failed(std::move(records), std::move(reason));
  if (q_ec) {
    spdlog::error("replay[{}]: cannot write failed/, the record stays pending: {}", options_.name,
                  q_ec.message());
    log_.rewind();
    co_return false;
  }
  index_.remove(b.msgs[index]);
  if (auto ec = log_.acknowledge(b.records[index].position)) {
    spdlog::error("replay[{}]: acknowledge failed: {}", options_.name, ec.message());
  }
  log_.rewind();
  co_return true;
}

// Stores the good records before the bad one, quarantines the bad one, and lets the next batch
// continue after it: order is kept and one bad record cannot block the log.
asio::awaitable<bool> buffer_replayer::quarantine_rejected(inflight_batch& b) {
  const std::size_t bad = *b.res.rejected_index;
  if (bad > 0) {
    std::vector<message> prefix(b.msgs.begin(), b.msgs.begin() + static_cast<std::ptrdiff_t>(bad));
    auto prefix_res = co_await store_.insert_batch(prefix, clock::now() + options_.deadline);
    if (prefix_res.failure() != store::failure_kind::none) {
      log_.rewind();
      failures_.inc();
      co_return false;
    }
    for (std::size_t i = 0; i < prefix.size() && i < prefix_res.items.size(); ++i)
      index_.committed(prefix[i], prefix_res.items[i].id);
    replayed_.inc(static_cast<double>(prefix.size()));
    hand_to_sink(prefix, prefix_res.items);
  }
  const bool moved = co_await set_aside(
      b, bad, "PostgreSQL rejected the record: SQLSTATE " + b.res.sqlstate + ": " + b.res.message);
  if (moved)
    rejected_.inc();
  co_return moved;
}

// The log skipped records it found corrupt: entries of the duplicate index may name messages
// that will never be stored. Every `written` entry of this log is re-checked against what the
// log still holds (retries meanwhile wait, see pending_index), so a later push with a lost
// record's transactionId is stored instead of being answered `duplicate` of nothing. False
// when the log could not be read through: nothing was dropped, and it is tried again.
asio::awaitable<bool> buffer_replayer::reindex() {
  index_.begin_verify(options_.log);
  log_.rewind();
  std::size_t records = 0;
  bool read_through = true;
  for (;;) {
    auto [ec, batch] = co_await log_.read_batch(10'000);
    if (ec) {
      spdlog::error("replay[{}]: re-indexing after skipped records: read failed (retried): {}",
                    options_.name, ec.message());
      read_through = false;
      break;
    }
    if (batch.empty())
      break;
    records += batch.size();
    for (const auto& r : batch)
      index_.verified(r.msg);
  }
  log_.rewind();
  index_.end_verify(options_.log, read_through);
  if (read_through) {
    spdlog::warn(
        "replay[{}]: the log set aside unreadable records; duplicate index re-checked "
        "against the {} records still pending",
        options_.name, records);
  }
  co_return read_through;
}

}  // namespace sluice::push
