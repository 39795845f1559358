#include "sluice/push/buffer_replayer.hpp"

#include <algorithm>
#include <system_error>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace sluice::push {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds min_backoff{100};
constexpr std::chrono::milliseconds max_backoff{5000};

buffer_replayer::buffer_replayer(asio::any_io_executor executor, buffer::buffer_log& log,
                                 store::message_store& store, pending_index& index, db_gate& gate,
                                 metrics::registry& metrics, replayer_options options)
    : executor_(std::move(executor)),
      log_(log),
      store_(store),
      index_(index),
      gate_(gate),
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
  flush_deadline_ = clock::time_point::max();
}

void buffer_replayer::start() {
  running_ = true;
  asio::co_spawn(executor_, run(), asio::detached);
}

asio::awaitable<void> buffer_replayer::stop() {
  stopping_ = true;
  wake_.notify_all();
  backoff_wake_.notify_all();
  while (running_)
    co_await stopped_.wait_until(clock::now() + std::chrono::milliseconds(100));
}

void buffer_replayer::appended(std::chrono::milliseconds buffer_ms, std::size_t buffer_max) {
  if (options_.flush_on_hints) {
    flush_threshold_ = std::min(flush_threshold_, std::max<std::size_t>(buffer_max, 1));
    flush_deadline_ = std::min(flush_deadline_, clock::now() + buffer_ms);
  }
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

asio::awaitable<void> buffer_replayer::run() {
  while (!stopping_) {
    if (!gate_.schema_ready()) {
      co_await wake_.wait_until(clock::now() + std::chrono::milliseconds(200));
      continue;
    }
    const auto pending = log_.stats().pending_records;
    if (pending == 0) {
      reset_hints();
      if (on_drained)
        on_drained();
      co_await wake_.wait_until(clock::now() + std::chrono::seconds(1));
      continue;
    }
    if (options_.flush_on_hints && pending < flush_threshold_ && clock::now() < flush_deadline_) {
      co_await wake_.wait_until(flush_deadline_);
      continue;
    }
    const bool progressed = co_await replay_window();
    if (!progressed) {
      // New appends do not cut the backoff short: under load they arrive constantly, and each
      // would become one more attempt against a database that is down.
      backoff_ = std::clamp(backoff_ * 2, min_backoff, max_backoff);
      co_await backoff_wake_.wait_until(clock::now() + backoff_);
    } else {
      backoff_ = std::chrono::milliseconds(0);
    }
  }
  running_ = false;
  stopped_.notify_all();
}

// A sliding window over the log: up to `depth` inserts are in flight, and as soon as the oldest
// commits the next batch is read and sent, so PostgreSQL always has work while sluice reads and
// decodes. Results are applied in log order, so the ack cursor only ever moves over committed
// records. If a batch fails, the ones after it that committed anyway are read again after the
// rewind and come back as duplicates: nothing is stored twice. Runs until the log is read to
// its end (QoS0 with flush hints: one batch), stop() or a failure. Returns false when nothing
// could be committed (PostgreSQL unavailable or overloaded).
asio::awaitable<bool> buffer_replayer::replay_window() {
  std::size_t batch = options_.max_batch;
  std::size_t depth = std::max<std::size_t>(options_.inflight_batches, 1);
  std::size_t batches_left = std::numeric_limits<std::size_t>::max();
  if (options_.flush_on_hints && flush_threshold_ != std::numeric_limits<std::size_t>::max()) {
    batch = std::min(batch, flush_threshold_);
    depth = 1;  // a QoS0 flush is one batch of at most bufferMax
    batches_left = 1;
  }
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
      while (!failed && !read_failed && !at_end && !stopping_ && batches_left > 0 &&
             window.size() < depth) {
        auto [read_ec, records] = co_await log_.read_batch(batch, use_tuple);
        if (read_ec) {
          spdlog::error("replay[{}]: reading the buffer failed: {}", options_.name,
                        read_ec.message());
          read_failed = true;
          break;
        }
        if (records.empty()) {
          at_end = true;
          break;
        }
        --batches_left;
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
        co_await finished.wait_until(clock::now() + std::chrono::seconds(1));
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
          if (failure == store::failure_kind::unavailable)
            gate_.report(false);
          spdlog::warn("replay[{}]: PostgreSQL unavailable, {} records wait: {}", options_.name,
                       log_.stats().pending_records,
                       b.res.message.empty() ? b.res.ec.message() : b.res.message);
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
      co_await finished.wait_until(clock::now() + std::chrono::seconds(1));
    log_.rewind();
    std::rethrow_exception(error);
  }
  if (read_failed && !failed) {
    // The read position is past records that were never sent: read them again next time.
    log_.rewind();
  }
  co_return progressed || !(failed || read_failed);
}

asio::awaitable<void> buffer_replayer::insert(inflight_batch& b) {
  const auto started = clock::now();
  b.res = co_await store_.insert_batch(b.msgs, started + options_.deadline);
  insert_seconds_.observe(std::chrono::duration<double>(clock::now() - started).count());
  batch_rows_.observe(static_cast<double>(b.msgs.size()));
}

void buffer_replayer::committed(inflight_batch& b) {
  gate_.report(true);
  std::size_t dup = 0;
  for (const auto& outcome : b.res.items) {
    dup += outcome.status == store::insert_status::duplicate ? 1 : 0;
  }
  if (auto ec = log_.acknowledge(b.records.back().position)) {
    spdlog::error("replay[{}]: acknowledge failed: {}", options_.name, ec.message());
  }
  for (const auto& m : b.msgs)
    index_.remove(m);
  replayed_.inc(static_cast<double>(b.msgs.size() - dup));
  duplicates_.inc(static_cast<double>(dup));
  hand_to_sink(b.msgs, b.res.items);
  recent_.emplace_back(clock::now(), b.msgs.size());
  while (!recent_.empty() && recent_.front().first < clock::now() - std::chrono::seconds(10)) {
    recent_.pop_front();
  }
  spdlog::debug("replay[{}]: committed {} records ({} duplicates)", options_.name, b.msgs.size(),
                dup);
  if (on_progress)
    on_progress();
}

// Stores the good records before the bad one, quarantines the bad one, and lets the next batch
// continue after it: order is kept and one bad record cannot block the log.
asio::awaitable<bool> buffer_replayer::quarantine_rejected(inflight_batch& b) {
  const std::size_t bad = *b.res.rejected_index;
  if (bad > 0) {
    std::vector<message> prefix(
        std::make_move_iterator(b.msgs.begin()),
        std::make_move_iterator(b.msgs.begin() + static_cast<std::ptrdiff_t>(bad)));
    auto prefix_res = co_await store_.insert_batch(prefix, clock::now() + options_.deadline);
    if (prefix_res.failure() != store::failure_kind::none) {
      log_.rewind();
      failures_.inc();
      co_return false;
    }
    for (const auto& m : prefix)
      index_.remove(m);
    replayed_.inc(static_cast<double>(prefix.size()));
    hand_to_sink(prefix, prefix_res.items);
  }
  const std::string reason =
      "PostgreSQL rejected the record: SQLSTATE " + b.res.sqlstate + ": " + b.res.message;
  spdlog::error("replay[{}]: record {} quarantined to failed/: {}", options_.name,
                b.msgs[bad].id.to_string(), reason);
  index_.remove(b.msgs[bad]);
  std::vector<message> quarantined{b.msgs[bad]};
  auto [q_ec] = co_await log_.quarantine_failed(std::move(quarantined), reason, use_tuple);
  if (q_ec) {
    spdlog::error("replay[{}]: cannot write failed/: {}", options_.name, q_ec.message());
    log_.rewind();
    co_return false;
  }
  rejected_.inc();
  if (auto ec = log_.acknowledge(b.records[bad].position)) {
    spdlog::error("replay[{}]: acknowledge failed: {}", options_.name, ec.message());
  }
  log_.rewind();
  co_return true;
}

}  // namespace sluice::push
