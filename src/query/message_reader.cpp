#include "sluice/query/message_reader.hpp"

#include "sluice/query/row_values.hpp"
#include "sluice/store/pg_binary.hpp"

#include <nlohmann/json.hpp>

namespace sluice::query {
namespace asio = boost::asio;

namespace {

constexpr std::int64_t postgres_epoch_unix_us = 946'684'800'000'000;

constexpr std::string_view columns = R"sql(
SELECT id, partition, floor(extract(epoch FROM created_at) * 1000)::int8,
       (extract(epoch FROM coalesce(event_time, created_at)) * 1000000)::int8,
       trace_id, transaction_id, payload
  FROM sluice_messages)sql";

// The filters as SQL, numbering parameters from $2 ($1 is the queue), and the parameters.
struct where_clause {
  std::string sql = " WHERE queue = $1";
  store::pg_params params;
  int next = 2;

  void add_text(std::string_view condition_prefix, const std::string& value) {
    sql += condition_prefix;
    sql += std::to_string(next++);
    params.add_text_bytes(value);
  }
  void add_time(std::string_view condition_prefix, std::int64_t us) {
    sql += condition_prefix;
    sql += std::to_string(next++);
    add_time_us(params, us);
  }
};

// Statement names encode which conditions are present: one prepared plan per shape.
where_clause filters(const std::string& queue, const message_filter& f, std::string& name) {
  where_clause w;
  w.params.add_text_bytes(queue);
  if (f.partition) {
    w.add_text(" AND partition = $", *f.partition);
    name += 'p';
  }
  if (f.start_us) {
    w.add_time(" AND coalesce(event_time, created_at) >= $", *f.start_us);
    name += 's';
  }
  if (f.end_us) {
    w.add_time(" AND coalesce(event_time, created_at) < $", *f.end_us);
    name += 'e';
  }
  return w;
}

}  // namespace

void add_time_us(store::pg_params& params, std::int64_t unix_us) {
  std::string bytes;
  store::pg_binary::put_int64(bytes, unix_us - postgres_epoch_unix_us);
  params.add_binary(bytes, store::pg_type::timestamptz);
}

std::optional<std::uint64_t> planned_rows(std::string_view explain_json) {
  const auto doc = nlohmann::json::parse(explain_json, nullptr, false);
  if (!doc.is_array() || doc.empty() || !doc[0].is_object())
    return std::nullopt;
  const auto plan = doc[0].find("Plan");
  if (plan == doc[0].end() || !plan->is_object())
    return std::nullopt;
  const auto rows = plan->find("Plan Rows");
  if (rows == plan->end() || !rows->is_number() || rows->get<double>() < 0)
    return std::nullopt;
  return static_cast<std::uint64_t>(rows->get<double>());
}

asio::awaitable<std::pair<store::statement_status, total_count>> message_reader::count(
    const std::string& queue, const message_filter& f, store::clock::time_point deadline) {
  std::string name = "sluice_query_count_";
  where_clause w = filters(queue, f, name);
  const std::string bounded = "SELECT count(*) FROM (SELECT 1 FROM sluice_messages" + w.sql +
                              " LIMIT " + std::to_string(exact_total_bound + 1) + ") s";
  store::pg_statement s{.sql = bounded, .params = w.params, .name = name};
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::pair{store::status_of(r), total_count{}};
  const auto n =
      r.rows.size() == 1 && r.rows[0].size() == 1 ? to_int64(r.rows[0][0]) : std::nullopt;
  if (!n)
    co_return std::pair{unexpected_answer("unexpected count row"), total_count{}};
  if (static_cast<std::uint64_t>(*n) <= exact_total_bound)
    co_return std::pair{store::statement_status{},
                        total_count{static_cast<std::uint64_t>(*n), false}};

  // More than the bound: the planner's estimate of the unbounded query, from the statistics
  // of the table and of the index expressions (one planning, no rows read). Not prepared: an
  // EXPLAIN of a generic plan would estimate for unknown values.
  const std::string explain = "EXPLAIN (FORMAT JSON) SELECT 1 FROM sluice_messages" + w.sql;
  store::pg_statement e{.sql = explain, .params = std::move(w.params)};
  const store::pg_result er = co_await pool_.execute(e, deadline);
  if (er.ec)
    co_return std::pair{store::status_of(er), total_count{}};
  std::string text;
  for (const auto& row : er.rows) {
    if (!row.empty() && row[0])
      text += *row[0];
  }
  const auto rows = planned_rows(text);
  if (!rows)
    co_return std::pair{unexpected_answer("unexpected EXPLAIN answer"), total_count{}};
  // Statistics lag behind inserts; the answer is at least what was counted.
  co_return std::pair{store::statement_status{},
                      total_count{std::max<std::uint64_t>(*rows, exact_total_bound + 1), true}};
}

asio::awaitable<message_page> message_reader::page(const message_page_request& r,
                                                   store::clock::time_point deadline) {
  message_page out;
  std::string name = r.sort == sort_order::asc ? "sluice_query_page_a" : "sluice_query_page_d";
  where_clause w = filters(r.queue, r.filter, name);
  constexpr std::string_view key = "coalesce(event_time, created_at)";
  if (r.after) {
    name += 'c';
    w.sql += " AND (coalesce(event_time, created_at), id) ";
    w.sql += r.sort == sort_order::asc ? '>' : '<';
    w.sql += " ($" + std::to_string(w.next) + ", $" + std::to_string(w.next + 1) + ")";
    w.next += 2;
    add_time_us(w.params, r.after->event_us);
    w.params.add(r.after->id);
  }
  const std::string dir = r.sort == sort_order::asc ? "" : " DESC";
  const std::string order = std::string(key) + dir + ", id" + dir;
  const std::string limits =
      " LIMIT $" + std::to_string(w.next) + " OFFSET $" + std::to_string(w.next + 1);
  // Page numbers skip with OFFSET: PostgreSQL reads the skipped rows from the index and the
  // table (an expression index gives no index-only scan), which max_offset_rows bounds.
  std::string sql(columns);
  sql += w.sql + " ORDER BY " + order + limits;
  w.params.add(static_cast<std::int64_t>(r.limit + 1));
  w.params.add(static_cast<std::int64_t>(r.offset));
  store::pg_statement s{.sql = sql, .params = std::move(w.params), .name = name};

  // The count first: rows inserted between the two statements then show up in the page, not
  // in a total that is smaller than what the walk finds.
  if (r.known_total) {
    out.total = *r.known_total;
  } else {
    auto [status, total] = co_await count(r.queue, r.filter, deadline);
    if (status) {
      out.status = std::move(status);
      co_return out;
    }
    out.total = total;
  }

  const store::pg_result res = co_await pool_.execute(s, deadline);
  if (res.ec) {
    out.status = store::status_of(res);
    co_return out;
  }
  out.items.reserve(std::min(res.rows.size(), r.limit));
  for (const auto& row : res.rows) {
    if (out.items.size() == r.limit) {
      const stored_message& last = out.items.back();
      out.next = message_position{last.event_us, last.id, {}};
      break;
    }
    const auto created = row.size() == 7 ? to_int64(row[2]) : std::nullopt;
    const auto event = row.size() == 7 ? to_int64(row[3]) : std::nullopt;
    const auto id = row.size() == 7 && row[0] ? uuid::parse(*row[0]) : std::nullopt;
    if (!id || !row[1] || !created || !event || !row[6]) {
      out.status = unexpected_answer("unexpected message row");
      out.items.clear();
      co_return out;
    }
    out.items.push_back(
        stored_message{*id, r.queue, *row[1], *created, *event, row[4], row[5], *row[6]});
  }
  co_return out;
}

}  // namespace sluice::query
