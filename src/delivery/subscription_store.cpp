#include "sluice/delivery/subscription_store.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <variant>

#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/delivery/subscription_json.hpp"

#include <spdlog/spdlog.h>

namespace sluice::delivery {
namespace asio = boost::asio;

namespace {

// Stored specs always spell out concurrency; this only satisfies parse_subscription.
constexpr std::uint32_t stored_concurrency_default = 1;

// Taken first in the put's transaction: two instances adding subscriptions to one queue-mode
// queue are serialised, and the check below sees the other's committed row (in READ COMMITTED
// each statement of the pipeline takes a fresh snapshot, after the lock was granted).
constexpr std::string_view lock_sql = "SELECT pg_advisory_xact_lock(hashtext($1))";

// One row: the conflicting name (NULL when none), whether ordering is refused, then, unless
// either, the stored row. The queue's mode is its sluice_queues row when it has one (read here,
// under the lock, so a concurrent switch is seen), else the caller's default ($4). xmax = 0
// only on a row this statement inserted (an updated row carries the updating transaction's
// id). The pause state is kept: a PUT redefines, it does not resume.
constexpr std::string_view put_sql = R"sql(
WITH mode AS (
  SELECT COALESCE((SELECT q.mode = 'queue' FROM sluice_queues q WHERE q.queue = $1), $4::bool)
         AS single
), other AS (
  SELECT name FROM sluice_subscriptions
   WHERE (SELECT single FROM mode) AND queue = $1 AND name <> $2 ORDER BY name LIMIT 1
), refused AS (
  SELECT (SELECT single FROM mode) AND $5::bool AS ordering
), up AS (
  INSERT INTO sluice_subscriptions AS s (queue, name, spec, updated_at)
  SELECT $1, $2, $3::jsonb, now()
   WHERE NOT EXISTS (SELECT 1 FROM other) AND NOT (SELECT ordering FROM refused)
  ON CONFLICT (queue, name) DO UPDATE SET spec = EXCLUDED.spec, updated_at = now()
  RETURNING (xmax = 0) AS created, spec::text AS spec, paused_at IS NOT NULL AS paused,
            paused_reason, (extract(epoch FROM updated_at) * 1000)::bigint AS updated_ms
)
SELECT (SELECT name FROM other), (SELECT ordering FROM refused), up.created, up.spec, up.paused,
       up.paused_reason, up.updated_ms
  FROM (SELECT 1) AS one LEFT JOIN up ON true)sql";

// After the lock: the queue's subscriptions (names, and one with ordering "partition"), and the
// mode written only when they allow it.
constexpr std::string_view switch_sql = R"sql(
WITH subs AS (
  SELECT name, spec->>'ordering' = 'partition' AS ordered FROM sluice_subscriptions
   WHERE queue = $1
), allowed AS (
  SELECT (SELECT count(*) FROM subs) < 2 AND NOT EXISTS (SELECT 1 FROM subs WHERE ordered) AS ok
), up AS (
  INSERT INTO sluice_queues (queue, mode) SELECT $1, 'queue' WHERE (SELECT ok FROM allowed)
  ON CONFLICT (queue) DO UPDATE SET mode = excluded.mode, updated_at = now()
  RETURNING queue
)
SELECT (SELECT count(*) FROM up) > 0,
       (SELECT string_agg(name, '/' ORDER BY name) FROM subs),
       (SELECT min(name) FROM subs WHERE ordered))sql";

constexpr std::string_view remove_sql = R"sql(
DELETE FROM sluice_subscriptions WHERE queue = $1 AND name = $2 RETURNING name)sql";

constexpr std::string_view set_paused_sql = R"sql(
UPDATE sluice_subscriptions
   SET paused_at = CASE WHEN $3::bool THEN COALESCE(paused_at, now()) END,
       paused_reason = CASE WHEN $3::bool THEN $4 END,
       updated_at = now()
 WHERE queue = $1 AND name = $2
RETURNING name)sql";

constexpr std::string_view columns = R"sql(queue, name, spec::text, paused_at IS NOT NULL,
       paused_reason, (extract(epoch FROM updated_at) * 1000)::bigint)sql";

const std::string load_sql =
    "SELECT " + std::string(columns) + " FROM sluice_subscriptions WHERE queue = $1 AND name = $2";
const std::string load_all_sql =
    "SELECT " + std::string(columns) + " FROM sluice_subscriptions ORDER BY queue, name";
const std::string load_queue_sql =
    "SELECT " + std::string(columns) + " FROM sluice_subscriptions WHERE queue = $1 ORDER BY name";

using store::status_of;

subscription_status unexpected(std::string what) {
  return {store::errc::query_failed, {}, std::move(what)};
}

std::int64_t int64_of(const std::optional<std::string>& text) {
  std::int64_t v = 0;
  if (text)
    std::from_chars(text->data(), text->data() + text->size(), v);
  return v;
}

// A stored row back to a subscription; nullopt (and why) when the spec no longer parses
// (written by a newer version, or edited by hand).
std::optional<subscription> decode(std::string_view queue, std::string_view name,
                                   std::string_view spec, bool paused,
                                   const std::optional<std::string>& reason,
                                   std::int64_t updated_ms, std::string& problem) {
  auto parsed = parse_subscription(queue, name, spec, stored_concurrency_default);
  if (auto* e = std::get_if<subscription_error>(&parsed)) {
    problem = e->field + ": " + e->message;
    return std::nullopt;
  }
  subscription s = std::move(std::get<subscription>(parsed));
  s.paused = paused;
  s.paused_reason = paused ? reason.value_or("") : "";
  s.updated_ms = updated_ms;
  return s;
}

// A row of `columns`.
std::optional<subscription> decode_row(const std::vector<std::optional<std::string>>& row,
                                       std::string& problem) {
  if (row.size() != 6 || !row[0] || !row[1] || !row[2]) {
    problem = "unexpected row shape";
    return std::nullopt;
  }
  return decode(*row[0], *row[1], *row[2], row[3] == "t", row[4], int64_of(row[5]), problem);
}

std::tuple<subscription_status, std::optional<subscription>> decode_one(const store::pg_result& r) {
  auto status = status_of(r);
  if (r.ec || r.rows.empty())
    return {std::move(status), std::nullopt};
  std::string problem;
  auto s = decode_row(r.rows.front(), problem);
  if (!s) {
    const auto& row = r.rows.front();
    spdlog::error("delivery: stored subscription {}/{} does not parse: {}",
                  row.size() > 1 ? row[0].value_or("") : "",
                  row.size() > 1 ? row[1].value_or("") : "", problem);
  }
  return {std::move(status), std::move(s)};
}

subscription_list_result decode_all(const store::pg_result& r) {
  subscription_list_result out;
  out.status = status_of(r);
  if (r.ec)
    return out;
  out.items.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    std::string problem;
    auto s = decode_row(row, problem);
    if (!s) {
      const std::string key =
          row.size() > 1 ? row[0].value_or("") + "/" + row[1].value_or("") : "?";
      spdlog::error("delivery: stored subscription {} does not parse: {}", key, problem);
      out.skipped.push_back(key);
      continue;
    }
    out.items.push_back(std::move(*s));
  }
  std::sort(out.items.begin(), out.items.end(), [](const subscription& a, const subscription& b) {
    return std::tie(a.queue, a.name) < std::tie(b.queue, b.name);
  });
  return out;
}

store::pg_statement key_statement(std::string_view sql, std::string_view statement_name,
                                  std::string_view queue, std::string_view name) {
  store::pg_statement s{.sql = sql, .name = statement_name};
  s.params.add_text_bytes(queue);
  s.params.add_text_bytes(name);
  return s;
}

subscription_change_result change_of(const store::pg_result& r) {
  subscription_change_result out;
  out.status = status_of(r);
  out.found = !r.ec && !r.rows.empty();
  return out;
}

}  // namespace

subscription_store::subscription_store(store::pg_pool& pool) : pool_(pool) {}

asio::awaitable<subscription_put_result> subscription_store::put(
    const subscription& s, bool queue_mode_single, store::clock::time_point deadline) {
  subscription_put_result out;
  std::array<store::pg_statement, 2> statements{
      store::pg_statement{.sql = lock_sql, .name = "sluice_subscriptions_lock"},
      store::pg_statement{.sql = put_sql, .name = "sluice_subscriptions_put"}};
  statements[0].params.add_text_bytes(s.queue);
  statements[1].params.add_text_bytes(s.queue);
  statements[1].params.add_text_bytes(s.name);
  statements[1].params.add_text_bytes(to_stored_json(s));
  statements[1].params.add_text(queue_mode_single ? "true" : "false", store::pg_type::boolean);
  statements[1].params.add_text(s.ordering == ordering::partition ? "true" : "false",
                                store::pg_type::boolean);

  auto [ec, lease] = co_await pool_.acquire(deadline);
  if (ec) {
    out.status = {ec, {}, ec.message()};
    co_return out;
  }
  const auto r = co_await lease->execute_pipeline(statements, deadline);
  if (r.ec) {
    out.status = {r.ec, r.sqlstate, r.message.empty() ? r.ec.message() : r.message};
    co_return out;
  }
  if (r.results.size() != 2 || r.results[1].rows.size() != 1 ||
      r.results[1].rows.front().size() != 7) {
    out.status = unexpected("unexpected result shape of the subscription put");
    co_return out;
  }
  const auto& row = r.results[1].rows.front();
  if (row[0]) {
    out.conflict_with = *row[0];
    co_return out;
  }
  if (row[1] == "t") {
    out.ordering_needs_broadcast = true;
    co_return out;
  }
  if (!row[3]) {
    out.status = unexpected("the subscription put stored nothing");
    co_return out;
  }
  out.created = row[2] == "t";
  std::string problem;
  out.stored = decode(s.queue, s.name, *row[3], row[4] == "t", row[5], int64_of(row[6]), problem);
  if (!out.stored) {
    // What we wrote ourselves does not read back: report what was sent rather than fail.
    spdlog::error("delivery: subscription {}/{} does not read back: {}", s.queue, s.name, problem);
    out.stored = s;
  }
  co_return out;
}

asio::awaitable<queue_mode_switch_result> subscription_store::switch_to_queue_mode(
    std::string_view queue, store::clock::time_point deadline) {
  queue_mode_switch_result out;
  std::array<store::pg_statement, 2> statements{
      store::pg_statement{.sql = lock_sql, .name = "sluice_subscriptions_lock"},
      store::pg_statement{.sql = switch_sql, .name = "sluice_subscriptions_switch"}};
  statements[0].params.add_text_bytes(queue);
  statements[1].params.add_text_bytes(queue);
  auto [ec, lease] = co_await pool_.acquire(deadline);
  if (ec) {
    out.status = {ec, {}, ec.message()};
    co_return out;
  }
  const auto r = co_await lease->execute_pipeline(statements, deadline);
  if (r.ec) {
    out.status = {r.ec, r.sqlstate, r.message.empty() ? r.ec.message() : r.message};
    co_return out;
  }
  if (r.results.size() != 2 || r.results[1].rows.size() != 1 ||
      r.results[1].rows.front().size() != 3) {
    out.status = unexpected("unexpected result shape of the queue mode switch");
    co_return out;
  }
  const auto& row = r.results[1].rows.front();
  out.switched = row[0] == "t";
  if (!out.switched) {
    // '/' never appears in names: a safe separator.
    std::string_view names = row[1] ? std::string_view(*row[1]) : std::string_view();
    while (!names.empty()) {
      const auto slash = names.find('/');
      out.subscriptions.emplace_back(names.substr(0, slash));
      names = slash == std::string_view::npos ? std::string_view() : names.substr(slash + 1);
    }
    out.ordered = row[2];
  }
  co_return out;
}

asio::awaitable<subscription_change_result> subscription_store::remove(
    std::string_view queue, std::string_view name, store::clock::time_point deadline) {
  const auto st = key_statement(remove_sql, "sluice_subscriptions_remove", queue, name);
  co_return change_of(co_await pool_.execute(st, deadline));
}

asio::awaitable<subscription_change_result> subscription_store::set_paused(
    std::string_view queue, std::string_view name, bool paused, std::string reason,
    store::clock::time_point deadline) {
  auto st = key_statement(set_paused_sql, "sluice_subscriptions_set_paused", queue, name);
  st.params.add_text(paused ? "true" : "false", store::pg_type::boolean);
  // The reason quotes the target (a 410's status line, whose phrase may hold any byte): made
  // text PostgreSQL accepts, or the pause itself would fail and deliveries go on.
  st.params.add_text_bytes(excerpt_of(reason));
  co_return change_of(co_await pool_.execute(st, deadline));
}

asio::awaitable<std::tuple<subscription_status, std::optional<subscription>>>
subscription_store::load(std::string_view queue, std::string_view name,
                         store::clock::time_point deadline) {
  const auto st = key_statement(load_sql, "sluice_subscriptions_load", queue, name);
  co_return decode_one(co_await pool_.execute(st, deadline));
}

asio::awaitable<subscription_list_result> subscription_store::load_all(
    std::optional<std::string> queue, store::clock::time_point deadline) {
  if (!queue) {
    const store::pg_statement st{.sql = load_all_sql, .name = "sluice_subscriptions_load_all"};
    co_return decode_all(co_await pool_.execute(st, deadline));
  }
  store::pg_statement st{.sql = load_queue_sql, .name = "sluice_subscriptions_load_queue"};
  st.params.add_text_bytes(*queue);
  co_return decode_all(co_await pool_.execute(st, deadline));
}

asio::awaitable<std::tuple<subscription_status, std::optional<subscription>>>
subscription_store::load(store::pg_connection& conn, std::string_view queue, std::string_view name,
                         store::clock::time_point deadline) {
  const auto st = key_statement(load_sql, "sluice_subscriptions_load", queue, name);
  co_return decode_one(co_await conn.execute(st, deadline));
}

asio::awaitable<subscription_list_result> subscription_store::load_all(
    store::pg_connection& conn, store::clock::time_point deadline) {
  const store::pg_statement st{.sql = load_all_sql, .name = "sluice_subscriptions_load_all"};
  co_return decode_all(co_await conn.execute(st, deadline));
}

}  // namespace sluice::delivery
