#include "sluice/delivery/attempt_recorder.hpp"

#include <algorithm>
#include <bit>
#include <string_view>

#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/delivery/dlq_values.hpp"
#include "sluice/store/pg_binary.hpp"

#include <spdlog/spdlog.h>

namespace sluice::delivery {
namespace asio = boost::asio;
namespace pg_binary = store::pg_binary;

namespace {

// One statement per batch: arrays in binary format, one round trip and one commit for all.
constexpr std::string_view insert_sql = R"sql(
INSERT INTO sluice_delivery_attempts
  (message_id, queue, subscription, attempt, attempted_at, outcome, status, latency_ms, error)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int4[], $5::timestamptz[],
                     $6::text[], $7::int4[], $8::float8[], $9::text[]))sql";

// Through the attempted_at index, a bounded number of rows per statement: a backlog of expired
// rows (after a long outage, or a shorter retention) is worked off in short transactions.
constexpr std::string_view prune_sql = R"sql(
DELETE FROM sluice_delivery_attempts
 WHERE ctid = ANY(ARRAY(
         SELECT ctid FROM sluice_delivery_attempts
          WHERE attempted_at < now() - $1::int8 * interval '1 second'
          LIMIT $2::int8)))sql";

// What a record may carry in its text columns: PostgreSQL refuses invalid UTF-8, and one bad
// error text must not cost the whole batch.
constexpr std::size_t error_max = 1024;

std::string int32_bytes(std::int32_t v) {
  std::string out;
  pg_binary::put_int32(out, v);
  return out;
}

std::string float8_bytes(double v) {
  std::string out;
  pg_binary::put_int64(out, std::bit_cast<std::int64_t>(v));
  return out;
}

std::size_t bytes_of(const attempt_record& r) {
  return sizeof(attempt_record) + r.queue.size() + r.subscription.size() + r.outcome.size() +
         r.error.size();
}

}  // namespace

attempt_recorder::attempt_recorder(store::pg_pool& pool, metrics::registry& metrics,
                                   attempt_recorder_options options)
    : pool_(pool),
      options_(options),
      written_(metrics
                   .add_counter("sluice_delivery_attempt_records_written_total",
                                "Delivery attempt records written to PostgreSQL.")
                   .get()),
      dropped_(metrics
                   .add_counter("sluice_delivery_attempt_records_dropped_total",
                                "Delivery attempt records dropped: the queue was full "
                                "(DELIVERY_ATTEMPTS_QUEUE_MAX records or 64 MiB) or PostgreSQL "
                                "refused them.")
                   .get()),
      pruned_(metrics
                  .add_counter("sluice_delivery_attempt_records_pruned_total",
                               "Delivery attempt records deleted after the retention "
                               "(DELIVERY_ATTEMPTS_RETENTION_HOURS).")
                  .get()) {
  options_.batch_max = std::max<std::size_t>(options_.batch_max, 1);
  options_.prune_batch = std::max<std::size_t>(options_.prune_batch, 1);
}

void attempt_recorder::record(attempt_record r) {
  // Cut here rather than when written: a queued record holds at most what it will store, so
  // the queue's bytes are bounded by its records (names are bounded by their validation).
  if (r.error.size() > error_max)
    r.error = excerpt_of(r.error, error_max);
  const std::size_t bytes = bytes_of(r);
  if (stopping_ || queue_.size() >= options_.queue_max ||
      queued_bytes_ + bytes > options_.queue_max_bytes) {
    dropped_.inc();
    return;
  }
  if (queue_.empty())
    first_queued_ = clock::now();
  queued_bytes_ += bytes;
  queue_.push_back(std::move(r));
  // The writer sleeps until the flush interval of the first record or a full batch.
  if (queue_.size() == 1 || queue_.size() == options_.batch_max)
    wake_.notify_all();
}

void attempt_recorder::stop() {
  stopping_ = true;
  wake_.notify_all();
}

asio::awaitable<void> attempt_recorder::run() {
  auto next_prune = clock::now();
  auto retry_at = clock::time_point::min();
  for (;;) {
    const auto now = clock::now();
    if (!queue_.empty() && now >= retry_at &&
        (stopping_ || queue_.size() >= options_.batch_max ||
         now >= first_queued_ + options_.flush_interval)) {
      if (co_await write_batch()) {
        retry_at = clock::time_point::min();
      } else if (stopping_) {
        // One more try was all the shutdown had room for.
        dropped_.inc(static_cast<double>(queue_.size()));
        queue_.clear();
        queued_bytes_ = 0;
      } else {
        retry_at = clock::now() + options_.retry_delay;
      }
      continue;
    }
    if (stopping_ && queue_.empty())
      co_return;
    if (now >= next_prune) {
      const bool more = co_await prune_batch();
      next_prune = more ? clock::now() : clock::now() + options_.prune_interval;
      continue;
    }
    auto wake_at = next_prune;
    if (!queue_.empty()) {
      wake_at = std::min(wake_at, std::max(retry_at, first_queued_ + options_.flush_interval));
    }
    co_await wake_.wait_until(wake_at);
  }
}

asio::awaitable<bool> attempt_recorder::write_batch() {
  const std::size_t n = std::min(queue_.size(), options_.batch_max);
  pg_binary::array_builder ids(store::pg_type::uuid, n * 20), queues(store::pg_type::text),
      subscriptions(store::pg_type::text), attempts(store::pg_type::int4, n * 8),
      times(store::pg_type::timestamptz, n * 12), outcomes(store::pg_type::text),
      statuses(store::pg_type::int4, n * 8), latencies(dlq_values::float8_type, n * 12),
      errors(store::pg_type::text);
  for (std::size_t i = 0; i < n; ++i) {
    const attempt_record& r = queue_[i];
    ids.add_uuid(r.message_id);
    queues.add(excerpt_of(r.queue));
    subscriptions.add(excerpt_of(r.subscription));
    attempts.add(int32_bytes(static_cast<std::int32_t>(r.attempt)));
    times.add_int64(pg_binary::timestamptz_from_unix_ms(r.attempted_ms));
    outcomes.add(excerpt_of(r.outcome));
    if (r.status) {
      statuses.add(int32_bytes(*r.status));
    } else {
      statuses.add_null();
    }
    latencies.add(float8_bytes(r.latency_ms));
    if (r.error.empty()) {
      errors.add_null();
    } else {
      errors.add(excerpt_of(r.error, error_max));
    }
  }
  store::pg_statement s{.sql = insert_sql, .name = "sluice_delivery_attempts_insert"};
  s.params.add_binary(ids.bytes(), store::pg_type::uuid_array);
  s.params.add_binary(queues.bytes(), store::pg_type::text_array);
  s.params.add_binary(subscriptions.bytes(), store::pg_type::text_array);
  s.params.add_binary(attempts.bytes(), store::pg_type::int4_array);
  s.params.add_binary(times.bytes(), store::pg_type::timestamptz_array);
  s.params.add_binary(outcomes.bytes(), store::pg_type::text_array);
  s.params.add_binary(statuses.bytes(), store::pg_type::int4_array);
  s.params.add_binary(latencies.bytes(), dlq_values::float8_array_type);
  s.params.add_binary(errors.bytes(), store::pg_type::text_array);
  const auto deadline = store::clock::now() + options_.statement_timeout;
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec && r.failure() != store::failure_kind::rejected) {
    if (!failing_) {
      spdlog::warn("delivery: attempt records not written, keeping {} and retrying error=\"{}\"",
                   queue_.size(), r.message.empty() ? r.ec.message() : r.message);
      failing_ = true;
    }
    co_return false;
  }
  if (r.ec) {
    // Records are observability: ones PostgreSQL refuses are not worth holding the rest for.
    spdlog::error("delivery: PostgreSQL refused {} attempt records sqlstate={} error=\"{}\"", n,
                  r.sqlstate, r.message);
    dropped_.inc(static_cast<double>(n));
  } else {
    written_.inc(static_cast<double>(n));
    if (failing_) {
      spdlog::info("delivery: attempt records written again");
      failing_ = false;
    }
  }
  // What arrived during the write keeps its first_queued_: it goes out at once (group commit).
  for (std::size_t i = 0; i < n; ++i)
    queued_bytes_ -= bytes_of(queue_[i]);
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
  co_return true;
}

asio::awaitable<bool> attempt_recorder::prune_batch() {
  store::pg_statement s{.sql = prune_sql, .name = "sluice_delivery_attempts_prune"};
  s.params.add(static_cast<std::int64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(options_.retention).count()));
  s.params.add(static_cast<std::int64_t>(options_.prune_batch));
  const auto deadline = store::clock::now() + options_.statement_timeout;
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec) {
    spdlog::debug("delivery: attempt records not pruned error=\"{}\"",
                  r.message.empty() ? r.ec.message() : r.message);
    co_return false;
  }
  pruned_.inc(static_cast<double>(r.affected_rows));
  co_return r.affected_rows >= options_.prune_batch;
}

}  // namespace sluice::delivery
