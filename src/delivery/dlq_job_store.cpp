#include "sluice/delivery/dlq_job_store.hpp"

#include <algorithm>
#include <string_view>

#include "sluice/delivery/dlq_values.hpp"

namespace sluice::delivery {
namespace asio = boost::asio;
using namespace dlq_values;

namespace {

#define SLUICE_DLQ_JOB_COLUMNS                                                                     \
  "id, filter->>'queue', filter->>'subscription',"                                                 \
  " (extract(epoch FROM (filter->>'start_time')::timestamptz) * 1000)::int8,"                      \
  " (extract(epoch FROM (filter->>'end_time')::timestamptz) * 1000)::int8, dry_run,"               \
  " rate_per_sec, matched, redriven, state, error, (extract(epoch FROM created_at) * 1000)::int8," \
  " (extract(epoch FROM updated_at) * 1000)::int8, (extract(epoch FROM finished_at) * 1000)::int8"

// The count and the insert are one statement: matched is exactly what the job may take (rows
// dead no later than its not_after, of subscriptions that exist: like redrive_one, a job leaves
// a deleted subscription's dead letters where they are rather than re-drive them into nothing).
constexpr std::string_view create_sql = R"sql(
INSERT INTO sluice_dlq_jobs (id, filter, dry_run, rate_per_sec, not_after, matched, state,
                             finished_at)
SELECT $1, jsonb_build_object('queue', $2::text, 'subscription', $3::text,
                              'start_time', $4::timestamptz, 'end_time', $5::timestamptz),
       $6::bool, $7::int4, now(), c.n,
       CASE WHEN $6::bool OR c.n = 0 THEN 'done' ELSE 'running' END,
       CASE WHEN $6::bool OR c.n = 0 THEN now() END
  FROM (SELECT count(*) AS n FROM sluice_dead_letters d
         WHERE ($2::text IS NULL OR d.queue = $2)
           AND ($3::text IS NULL OR d.subscription = $3)
           AND ($4::timestamptz IS NULL OR d.dead_at >= $4)
           AND ($5::timestamptz IS NULL OR d.dead_at < $5)
           AND d.dead_at <= now()
           AND EXISTS (SELECT 1 FROM sluice_subscriptions s
                        WHERE s.queue = d.queue AND s.name = d.subscription)) c
RETURNING )sql" SLUICE_DLQ_JOB_COLUMNS;

constexpr std::string_view get_sql =
    "SELECT " SLUICE_DLQ_JOB_COLUMNS " FROM sluice_dlq_jobs WHERE id = $1";

#undef SLUICE_DLQ_JOB_COLUMNS

constexpr std::string_view running_sql = R"sql(
SELECT id FROM sluice_dlq_jobs WHERE state = 'running' ORDER BY created_at, id)sql";

// The job's row, locked for this batch; another instance holding it runs the batch instead.
// Everything the batch needs is read under the lock, never from memory.
constexpr std::string_view lock_sql = R"sql(
SELECT rate_per_sec, filter->>'queue', filter->>'subscription',
       (extract(epoch FROM (filter->>'start_time')::timestamptz) * 1000000)::int8,
       (extract(epoch FROM (filter->>'end_time')::timestamptz) * 1000000)::int8,
       (extract(epoch FROM not_after) * 1000000)::int8,
       (extract(epoch FROM cursor_at) * 1000000)::int8, cursor_id,
       (extract(epoch FROM now() - updated_at) * 1000)::int8
  FROM sluice_dlq_jobs WHERE id = $1 AND state = 'running'
   FOR UPDATE SKIP LOCKED)sql";

constexpr std::string_view state_sql = "SELECT state FROM sluice_dlq_jobs WHERE id = $1";

// The next rows after the cursor in (dead_at, id) order; WITH TIES takes every row of the last
// (dead_at, id) (a broadcast message's rows of several subscriptions), since the cursor has no
// room to stop between them. Moved like redrive_one; the job's cursor, count and state change
// in the same statement. Fewer rows than asked for: nothing is left, the job is done.
// Unnamed (planned with the values), so absent filters fold away and the indexes apply.
constexpr std::string_view move_sql = R"sql(
WITH picked AS (
  SELECT d.id, d.queue, d.subscription, d.dead_at FROM sluice_dead_letters d
   WHERE ($2::text IS NULL OR d.queue = $2)
     AND ($3::text IS NULL OR d.subscription = $3)
     AND ($4::timestamptz IS NULL OR d.dead_at >= $4)
     AND ($5::timestamptz IS NULL OR d.dead_at < $5)
     AND d.dead_at <= $6
     AND ($7::timestamptz IS NULL OR (d.dead_at, d.id) > ($7, $8::uuid))
     AND EXISTS (SELECT 1 FROM sluice_subscriptions s
                  WHERE s.queue = d.queue AND s.name = d.subscription)
   ORDER BY d.dead_at, d.id
   FETCH FIRST ($9::int8) ROWS WITH TIES),
moved AS (
  DELETE FROM sluice_dead_letters d USING picked p
   WHERE d.id = p.id AND d.queue = p.queue AND d.subscription = p.subscription
  RETURNING d.id, d.queue, d.subscription, d.partition, d.headers, d.created_ms, d.payload),
retried AS (
  INSERT INTO sluice_delivery_retries
    (queue, subscription, message_id, attempt, due_at, origin, partition, headers, created_ms,
     payload)
  SELECT queue, subscription, id, 1, now(), 'redrive', partition, headers, created_ms, payload
    FROM moved
  ON CONFLICT (queue, subscription, message_id) DO UPDATE
    SET attempt = 1, due_at = now(), origin = 'redrive', partition = EXCLUDED.partition,
        headers = EXCLUDED.headers, created_ms = EXCLUDED.created_ms, payload = EXCLUDED.payload,
        first_attempt_at = NULL, claimed_until = NULL
  RETURNING 1),
last AS (SELECT dead_at, id FROM picked ORDER BY dead_at DESC, id DESC LIMIT 1),
counts AS (SELECT (SELECT count(*) FROM picked) AS picked, (SELECT count(*) FROM retried) AS n)
UPDATE sluice_dlq_jobs j
   SET cursor_at = coalesce((SELECT dead_at FROM last), j.cursor_at),
       cursor_id = coalesce((SELECT id FROM last), j.cursor_id),
       redriven = j.redriven + counts.n,
       state = CASE WHEN counts.picked < $9::int8 THEN 'done' ELSE j.state END,
       finished_at = CASE WHEN counts.picked < $9::int8 THEN now() END,
       updated_at = now()
  FROM counts
 WHERE j.id = $1
RETURNING j.state, counts.n)sql";

dlq_status bad_row() {
  dlq_status s;
  s.ec = store::errc::query_failed;
  s.message = "unexpected dlq job row";
  return s;
}

std::optional<dlq_job> job_of(const std::vector<std::optional<std::string>>& row) {
  if (row.size() < 14)
    return std::nullopt;
  dlq_job j;
  const auto id = row[0] ? uuid::parse(*row[0]) : std::nullopt;
  const auto matched = to_int64(row[7]);
  const auto redriven = to_int64(row[8]);
  const auto created = to_int64(row[11]);
  const auto updated = to_int64(row[12]);
  if (!id || !row[5] || !matched || !redriven || !row[9] || !created || !updated)
    return std::nullopt;
  j.id = *id;
  j.filter.queue = row[1];
  j.filter.subscription = row[2];
  j.filter.start_ms = to_int64(row[3]);
  j.filter.end_ms = to_int64(row[4]);
  j.dry_run = *row[5] == "t";
  if (const auto rate = to_int64(row[6]))
    j.rate_per_sec = static_cast<std::int32_t>(*rate);
  j.matched = *matched;
  j.redriven = *redriven;
  j.state = *row[9];
  j.error = row[10];
  j.created_ms = *created;
  j.updated_ms = *updated;
  j.finished_ms = to_int64(row[13]);
  return j;
}

void add_optional_time_us(store::pg_params& params, const std::optional<std::int64_t>& unix_us) {
  if (unix_us) {
    add_time_us(params, *unix_us);
  } else {
    params.add_null(store::pg_type::timestamptz);
  }
}

}  // namespace

std::size_t dlq_batch_size(std::optional<std::int32_t> rate_per_sec, std::size_t batch_max) {
  batch_max = std::max<std::size_t>(batch_max, 1);
  if (!rate_per_sec || *rate_per_sec <= 0)
    return batch_max;
  return std::clamp<std::size_t>(static_cast<std::size_t>(*rate_per_sec) / 5, 1, batch_max);
}

dlq_job_store::dlq_job_store(store::pg_pool& pool) : pool_(pool) {}

asio::awaitable<std::tuple<dlq_status, dlq_job>> dlq_job_store::create(
    const dead_letter_filter& filter, bool dry_run, std::optional<std::int32_t> rate_per_sec,
    store::clock::time_point deadline) {
  store::pg_statement s{.sql = create_sql};
  s.params.add(ids_.next());
  add_optional_text(s.params, filter.queue);
  add_optional_text(s.params, filter.subscription);
  add_optional_time_ms(s.params, filter.start_ms);
  add_optional_time_ms(s.params, filter.end_ms);
  s.params.add_text(dry_run ? "true" : "false", store::pg_type::boolean);
  if (rate_per_sec) {
    s.params.add(*rate_per_sec);
  } else {
    s.params.add_null(store::pg_type::int4);
  }
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::make_tuple(status_of(r), dlq_job{});
  auto job = r.rows.size() == 1 ? job_of(r.rows[0]) : std::nullopt;
  if (!job)
    co_return std::make_tuple(bad_row(), dlq_job{});
  co_return std::make_tuple(dlq_status{}, std::move(*job));
}

asio::awaitable<std::tuple<dlq_status, std::optional<dlq_job>>> dlq_job_store::get(
    const uuid& id, store::clock::time_point deadline) {
  store::pg_statement s{.sql = get_sql, .name = "sluice_dlq_job_get"};
  s.params.add(id);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::make_tuple(status_of(r), std::optional<dlq_job>());
  if (r.rows.empty())
    co_return std::make_tuple(dlq_status{}, std::optional<dlq_job>());
  auto job = job_of(r.rows[0]);
  if (!job)
    co_return std::make_tuple(bad_row(), std::optional<dlq_job>());
  co_return std::make_tuple(dlq_status{}, std::move(job));
}

asio::awaitable<std::tuple<dlq_status, std::vector<uuid>>> dlq_job_store::running(
    store::clock::time_point deadline) {
  std::vector<uuid> out;
  const store::pg_statement s{.sql = running_sql, .name = "sluice_dlq_jobs_running"};
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::make_tuple(status_of(r), std::move(out));
  for (const auto& row : r.rows) {
    const auto id = !row.empty() && row[0] ? uuid::parse(*row[0]) : std::nullopt;
    if (!id)
      co_return std::make_tuple(bad_row(), std::vector<uuid>{});
    out.push_back(*id);
  }
  co_return std::make_tuple(dlq_status{}, std::move(out));
}

asio::awaitable<dlq_batch_result> dlq_job_store::run_batch(const uuid& id, std::size_t batch_max,
                                                           store::clock::time_point deadline) {
  using outcome = dlq_batch_result::outcome;
  dlq_batch_result out;
  auto [acquire_ec, lease] = co_await pool_.acquire(deadline);
  if (acquire_ec) {
    out.status = status_of(acquire_ec);
    co_return out;
  }
  store::pg_connection& conn = *lease;
  // Ends the transaction so the connection goes back to the pool clean; were it left open, the
  // pool would drop the connection, which rolls back as well.
  const auto rollback = [&conn, deadline]() -> asio::awaitable<void> {
    if (conn.is_open())
      co_await conn.execute("ROLLBACK", deadline);
  };
  const auto failed = [&out](const store::pg_result& r) {
    out.result = outcome::failed;
    out.status = status_of(r);
  };

  store::pg_result r = co_await conn.execute("BEGIN", deadline);
  if (r.ec) {
    failed(r);
    co_return out;
  }
  store::pg_statement lock{.sql = lock_sql, .name = "sluice_dlq_job_lock"};
  lock.params.add(id);
  r = co_await conn.execute(lock, deadline);
  if (r.ec) {
    failed(r);
    co_await rollback();
    co_return out;
  }
  if (r.rows.empty()) {
    co_await rollback();
    store::pg_statement state{.sql = state_sql, .name = "sluice_dlq_job_state"};
    state.params.add(id);
    const store::pg_result st = co_await conn.execute(state, deadline);
    if (st.ec) {
      failed(st);
    } else if (!st.rows.empty() && st.rows[0].at(0) == std::optional<std::string>("running")) {
      out.result = outcome::busy;
    } else {
      out.result = outcome::gone;
    }
    co_return out;
  }
  const auto& row = r.rows[0];
  std::optional<std::int32_t> rate;
  if (const auto v = to_int64(row.at(0)))
    rate = static_cast<std::int32_t>(*v);
  const auto not_after = to_int64(row.at(5));
  const auto cursor_at = to_int64(row.at(6));
  const auto cursor_id = row.at(7) ? uuid::parse(*row.at(7)) : std::nullopt;
  const auto since_ms = to_int64(row.at(8));
  if (!not_after || !since_ms || cursor_at.has_value() != cursor_id.has_value()) {
    out.status = bad_row();
    co_await rollback();
    co_return out;
  }
  const std::size_t batch = dlq_batch_size(rate, batch_max);
  const std::int64_t interval_ms =
      rate && *rate > 0 ? static_cast<std::int64_t>(batch) * 1000 / *rate : 0;
  // The first batch goes at once; each later one a batch's worth of the rate after the last.
  if (interval_ms > 0 && cursor_at) {
    if (*since_ms < interval_ms) {
      co_await rollback();
      out.result = outcome::not_due;
      out.wait = std::chrono::milliseconds(interval_ms - *since_ms);
      co_return out;
    }
  }

  store::pg_statement move{.sql = move_sql};
  move.params.add(id);
  add_optional_text(move.params, row.at(1));
  add_optional_text(move.params, row.at(2));
  add_optional_time_us(move.params, to_int64(row.at(3)));
  add_optional_time_us(move.params, to_int64(row.at(4)));
  add_time_us(move.params, *not_after);
  add_optional_time_us(move.params, cursor_at);
  if (cursor_id) {
    move.params.add(*cursor_id);
  } else {
    move.params.add_null(store::pg_type::uuid);
  }
  move.params.add(static_cast<std::int64_t>(batch));
  r = co_await conn.execute(move, deadline);
  if (r.ec || r.rows.size() != 1 || r.rows[0].size() != 2) {
    if (r.ec) {
      failed(r);
    } else {
      out.status = bad_row();
    }
    co_await rollback();
    co_return out;
  }
  const bool done = r.rows[0][0] == std::optional<std::string>("done");
  const auto moved = to_int64(r.rows[0][1]);
  r = co_await conn.execute("COMMIT", deadline);
  if (r.ec) {
    failed(r);
    co_return out;
  }
  out.moved = moved.value_or(0);
  out.result = done ? outcome::finished : outcome::moved;
  out.wait = std::chrono::milliseconds(interval_ms);
  co_return out;
}

}  // namespace sluice::delivery
