#include "sluice/query/queue_reader.hpp"

#include "sluice/query/row_values.hpp"

namespace sluice::query {
namespace asio = boost::asio;

namespace {

// One index descent per partition (sluice_messages_queue_partition_time's prefix); the
// recursion is evaluated lazily, so the LIMIT outside stops it.
std::string partitions_sql(sort_order sort, bool after) {
  const std::string_view op = sort == sort_order::asc ? ">" : "<";
  const std::string_view dir = sort == sort_order::asc ? "" : " DESC";
  std::string sql =
      "WITH RECURSIVE p AS (\n  (SELECT partition FROM sluice_messages WHERE queue = $1";
  if (after)
    sql += " AND partition " + std::string(op) + " $4";
  sql += " ORDER BY partition" + std::string(dir) + " LIMIT 1)\n  UNION ALL\n";
  sql += "  SELECT (SELECT m.partition FROM sluice_messages m WHERE m.queue = $1 AND m.partition " +
         std::string(op) + " p.partition ORDER BY m.partition" + std::string(dir) +
         " LIMIT 1)\n    FROM p WHERE p.partition IS NOT NULL\n)\n";
  sql += "SELECT partition FROM p WHERE partition IS NOT NULL LIMIT $2 OFFSET $3";
  return sql;
}

constexpr std::string_view count_partitions_sql = R"sql(
WITH RECURSIVE p AS (
  (SELECT partition FROM sluice_messages WHERE queue = $1 ORDER BY partition LIMIT 1)
  UNION ALL
  SELECT (SELECT m.partition FROM sluice_messages m WHERE m.queue = $1 AND m.partition > p.partition
           ORDER BY m.partition LIMIT 1)
    FROM p WHERE p.partition IS NOT NULL
)
SELECT count(*) FROM (SELECT 1 FROM p WHERE partition IS NOT NULL LIMIT $2) s)sql";

// The queues: those with messages (a loose scan of sluice_messages_queue_time) and those with
// a setting. Message and dead-letter counts are bounded like the messages' total; first and
// last are one index probe each (min/max of the index's second column). The outbox has no
// queue column: at most $5 of its rows are read (a primary-key probe of sluice_messages each)
// and counted by queue, once for the page; the outbox is small unless RabbitMQ has been away,
// and then the counts are scaled from that sample ($5 - 1 rows fit: exact).
constexpr std::string_view queues_sql = R"sql(
WITH RECURSIVE q AS (
  (SELECT queue FROM sluice_messages WHERE queue > $1 ORDER BY queue LIMIT 1)
  UNION ALL
  SELECT (SELECT m.queue FROM sluice_messages m WHERE m.queue > q.queue ORDER BY m.queue LIMIT 1)
    FROM q WHERE q.queue IS NOT NULL
), names AS (
  SELECT queue FROM q WHERE queue IS NOT NULL
  UNION
  SELECT queue FROM sluice_queues WHERE queue > $1
), page AS (
  SELECT queue FROM names
   WHERE $2::text[] IS NULL OR EXISTS (SELECT 1 FROM unnest($2::text[]) pre
                                        WHERE starts_with(names.queue, pre))
   ORDER BY queue LIMIT $3
), outbox_sample AS MATERIALIZED (
  SELECT m.queue FROM (SELECT id FROM sluice_relay_outbox LIMIT $5) o
    JOIN sluice_messages m ON m.id = o.id
), outbox AS (
  SELECT queue, count(*) AS n FROM outbox_sample GROUP BY queue
), outbox_scale AS (
  SELECT CASE WHEN (SELECT count(*) FROM outbox_sample) < $5 THEN NULL
              ELSE greatest(c.reltuples, $5) / $5 END AS factor
    FROM pg_class c WHERE c.oid = 'sluice_relay_outbox'::regclass
)
SELECT n.queue,
       (SELECT count(*) FROM (SELECT 1 FROM sluice_messages m WHERE m.queue = n.queue
                               LIMIT $4) s),
       coalesce(round(o.n * coalesce((SELECT factor FROM outbox_scale), 1))::int8, 0),
       (SELECT factor FROM outbox_scale) IS NOT NULL,
       (SELECT count(*) FROM (SELECT 1 FROM sluice_dead_letters d WHERE d.queue = n.queue
                               LIMIT $4) s),
       (SELECT (extract(epoch FROM min(coalesce(event_time, created_at))) * 1000000)::int8
          FROM sluice_messages m WHERE m.queue = n.queue),
       (SELECT (extract(epoch FROM max(coalesce(event_time, created_at))) * 1000000)::int8
          FROM sluice_messages m WHERE m.queue = n.queue)
  FROM page n LEFT JOIN outbox o ON o.queue = n.queue
 ORDER BY n.queue)sql";

// Outbox rows read for the queue list's unpublished counts.
constexpr std::int64_t outbox_sample_rows = 10'001;

// A text[] literal; every element quoted, so no name needs more than \ and " escaped.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ',';
    out += '"';
    for (const char c : items[i]) {
      if (c == '"' || c == '\\')
        out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace

asio::awaitable<std::pair<store::statement_status, std::uint64_t>> queue_reader::estimate(
    const std::string& sql, const std::string& param, store::clock::time_point deadline) {
  const std::string explain = "EXPLAIN (FORMAT JSON) " + sql;
  store::pg_statement e{.sql = explain};
  e.params.add_text_bytes(param);
  const store::pg_result r = co_await pool_.execute(e, deadline);
  if (r.ec)
    co_return std::pair{store::status_of(r), std::uint64_t{0}};
  std::string text;
  for (const auto& row : r.rows) {
    if (!row.empty() && row[0])
      text += *row[0];
  }
  const auto rows = planned_rows(text);
  if (!rows)
    co_return std::pair{unexpected_answer("unexpected EXPLAIN answer"), std::uint64_t{0}};
  co_return std::pair{store::statement_status{}, *rows};
}

asio::awaitable<std::pair<store::statement_status, total_count>> queue_reader::count_partitions(
    const std::string& queue, store::clock::time_point deadline) {
  store::pg_statement s{.sql = count_partitions_sql, .name = "sluice_query_partitions_count"};
  s.params.add_text_bytes(queue);
  s.params.add(static_cast<std::int64_t>(exact_partition_bound + 1));
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::pair{store::status_of(r), total_count{}};
  const auto n =
      r.rows.size() == 1 && r.rows[0].size() == 1 ? to_int64(r.rows[0][0]) : std::nullopt;
  if (!n)
    co_return std::pair{unexpected_answer("unexpected count row"), total_count{}};
  if (static_cast<std::uint64_t>(*n) <= exact_partition_bound)
    co_return std::pair{store::statement_status{},
                        total_count{static_cast<std::uint64_t>(*n), false}};
  // The planner's number of groups: n_distinct of partition, scaled to the queue's share.
  auto [status, rows] = co_await estimate(
      "SELECT DISTINCT partition FROM sluice_messages WHERE queue = $1", queue, deadline);
  if (status)
    co_return std::pair{std::move(status), total_count{}};
  co_return std::pair{store::statement_status{},
                      total_count{std::max<std::uint64_t>(rows, exact_partition_bound + 1), true}};
}

asio::awaitable<partition_page> queue_reader::partitions(const partition_page_request& r,
                                                         store::clock::time_point deadline) {
  partition_page out;
  if (r.known_total) {
    out.total = *r.known_total;
  } else {
    auto [status, total] = co_await count_partitions(r.queue, deadline);
    if (status) {
      out.status = std::move(status);
      co_return out;
    }
    out.total = total;
  }
  const std::string sql = partitions_sql(r.sort, r.after.has_value());
  std::string name = "sluice_query_partitions_";
  name += r.sort == sort_order::asc ? 'a' : 'd';
  if (r.after)
    name += 'c';
  store::pg_statement s{.sql = sql, .name = name};
  s.params.add_text_bytes(r.queue);
  s.params.add(static_cast<std::int64_t>(r.limit + 1));
  s.params.add(static_cast<std::int64_t>(r.offset));
  if (r.after)
    s.params.add_text_bytes(*r.after);
  const store::pg_result res = co_await pool_.execute(s, deadline);
  if (res.ec) {
    out.status = store::status_of(res);
    co_return out;
  }
  for (const auto& row : res.rows) {
    if (out.items.size() == r.limit) {
      out.more = true;
      break;
    }
    if (row.size() != 1 || !row[0]) {
      out.status = unexpected_answer("unexpected partition row");
      out.items.clear();
      co_return out;
    }
    out.items.push_back(*row[0]);
  }
  co_return out;
}

asio::awaitable<queue_list> queue_reader::queues(const queue_list_request& r,
                                                 store::clock::time_point deadline) {
  queue_list out;
  store::pg_statement s{.sql = queues_sql, .name = "sluice_query_queues"};
  s.params.add_text_bytes(r.after.value_or(""));
  if (r.prefixes.empty())
    s.params.add_null(store::pg_type::text_array);
  else
    s.params.add_text(text_array(r.prefixes), store::pg_type::text_array);
  s.params.add(static_cast<std::int64_t>(r.limit + 1));
  s.params.add(static_cast<std::int64_t>(exact_total_bound + 1));
  s.params.add(outbox_sample_rows);
  const store::pg_result res = co_await pool_.execute(s, deadline);
  if (res.ec) {
    out.status = store::status_of(res);
    co_return out;
  }
  for (const auto& row : res.rows) {
    if (out.items.size() == r.limit) {
      out.more = true;
      break;
    }
    const auto total = row.size() == 7 ? to_int64(row[1]) : std::nullopt;
    const auto unpublished = row.size() == 7 ? to_int64(row[2]) : std::nullopt;
    const auto dead = row.size() == 7 ? to_int64(row[4]) : std::nullopt;
    if (!total || !unpublished || !dead || !row[0] || !row[3]) {
      out.status = unexpected_answer("unexpected queue row");
      out.items.clear();
      co_return out;
    }
    const auto bounded = [](std::int64_t n) {
      return total_count{static_cast<std::uint64_t>(n),
                         static_cast<std::uint64_t>(n) > exact_total_bound};
    };
    out.items.push_back(
        queue_summary{*row[0], bounded(*total),
                      total_count{static_cast<std::uint64_t>(*unpublished), *row[3] == "t"},
                      bounded(*dead), to_int64(row[5]), to_int64(row[6])});
  }
  // Beyond the bound the planner estimates, one EXPLAIN per large queue (few: a page of
  // queues holds at most `limit`, and only the ones over the bound pay it).
  for (auto& q : out.items) {
    if (!q.total.is_estimate)
      continue;
    auto [status, rows] =
        co_await estimate("SELECT 1 FROM sluice_messages WHERE queue = $1", q.queue, deadline);
    if (status) {
      out.status = std::move(status);
      out.items.clear();
      co_return out;
    }
    q.total.value = std::max<std::uint64_t>(rows, exact_total_bound + 1);
  }
  co_return out;
}

}  // namespace sluice::query
