#include "sluice/push/buffer_replayer.hpp"

#include <algorithm>

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
    const bool progressed = co_await replay_one_batch();
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

// Returns false when nothing could be committed (PostgreSQL unavailable or overloaded).
asio::awaitable<bool> buffer_replayer::replay_one_batch() {
  std::size_t batch = options_.max_batch;
  if (options_.flush_on_hints && flush_threshold_ != std::numeric_limits<std::size_t>::max()) {
    batch = std::min(batch, flush_threshold_);
  }
  auto [read_ec, records] = co_await log_.read_batch(batch, use_tuple);
  if (read_ec) {
    spdlog::error("replay[{}]: reading the buffer failed: {}", options_.name, read_ec.message());
    co_return false;
  }
  if (records.empty())
    co_return true;
  if (options_.flush_on_hints)
    reset_hints();

  std::vector<message> msgs;
  msgs.reserve(records.size());
  for (auto& r : records)
    msgs.push_back(std::move(r.msg));

  const auto started = clock::now();
  store::insert_result res = co_await store_.insert_batch(msgs, started + options_.deadline);
  insert_seconds_.observe(std::chrono::duration<double>(clock::now() - started).count());
  batch_rows_.observe(static_cast<double>(msgs.size()));
  const auto failure = res.failure();

  if (failure == store::failure_kind::none) {
    gate_.report(true);
    std::size_t dup = 0;
    for (const auto& outcome : res.items)
      dup += outcome.status == store::insert_status::duplicate ? 1 : 0;
    if (auto ec = log_.acknowledge(records.back().position)) {
      spdlog::error("replay[{}]: acknowledge failed: {}", options_.name, ec.message());
    }
    for (const auto& m : msgs)
      index_.remove(m);
    replayed_.inc(static_cast<double>(msgs.size() - dup));
    hand_to_sink(msgs, res.items);
    duplicates_.inc(static_cast<double>(dup));
    recent_.emplace_back(clock::now(), msgs.size());
    while (!recent_.empty() && recent_.front().first < clock::now() - std::chrono::seconds(10))
      recent_.pop_front();
    spdlog::debug("replay[{}]: committed {} records ({} duplicates)", options_.name, msgs.size(),
                  dup);
    co_return true;
  }

  if (failure == store::failure_kind::rejected && res.rejected_index &&
      *res.rejected_index < msgs.size()) {
    // Store the good records before the bad one, quarantine the bad one, and let the next
    // batch continue after it: order is kept and one bad record cannot block the log.
    const std::size_t bad = *res.rejected_index;
    if (bad > 0) {
      std::vector<message> prefix(
          std::make_move_iterator(msgs.begin()),
          std::make_move_iterator(msgs.begin() + static_cast<std::ptrdiff_t>(bad)));
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
        "PostgreSQL rejected the record: SQLSTATE " + res.sqlstate + ": " + res.message;
    spdlog::error("replay[{}]: record {} quarantined to failed/: {}", options_.name,
                  msgs[bad].id.to_string(), reason);
    index_.remove(msgs[bad]);
    std::vector<message> quarantined{msgs[bad]};
    auto [q_ec] = co_await log_.quarantine_failed(std::move(quarantined), reason, use_tuple);
    if (q_ec) {
      spdlog::error("replay[{}]: cannot write failed/: {}", options_.name, q_ec.message());
      log_.rewind();
      co_return false;
    }
    rejected_.inc();
    log_.acknowledge(records[bad].position);
    log_.rewind();
    co_return true;
  }

  log_.rewind();
  failures_.inc();
  if (failure == store::failure_kind::unavailable)
    gate_.report(false);
  spdlog::warn("replay[{}]: PostgreSQL unavailable, {} records wait: {}", options_.name,
               log_.stats().pending_records, res.message.empty() ? res.ec.message() : res.message);
  co_return false;
}

}  // namespace sluice::push
