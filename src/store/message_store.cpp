#include "sluice/store/message_store.hpp"

#include <string_view>
#include <unordered_map>

#include "sluice/store/pg_binary.hpp"

#include <spdlog/spdlog.h>

namespace sluice::store {
namespace asio = boost::asio;

namespace {

// Conflicts on the primary key (a replayed id) and on the (queue, transaction_id) index alike
// are skipped; RETURNING then lists only the rows actually inserted. Each inserted row also
// gets its relay outbox row (unpublished until RabbitMQ confirms it), in the same statement.
// That insert has no ON CONFLICT (it cost 6 % at batch 100): an outbox row exists only for a
// message row, and sluice never deletes messages.
constexpr std::string_view insert_unnest_sql = R"sql(
WITH stored AS (
  INSERT INTO sluice_messages
    (id, queue, partition, namespace, task, trace_id, transaction_id, payload, created_at,
     event_time)
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::json[], $9::timestamptz[], $10::timestamptz[])
  ON CONFLICT DO NOTHING
  RETURNING id),
outbox AS (INSERT INTO sluice_relay_outbox (id) SELECT id FROM stored)
SELECT id FROM stored)sql";

constexpr std::string_view insert_row_sql = R"sql(
WITH stored AS (
  INSERT INTO sluice_messages
    (id, queue, partition, namespace, task, trace_id, transaction_id, payload, created_at,
     event_time)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
  ON CONFLICT DO NOTHING
  RETURNING id),
outbox AS (INSERT INTO sluice_relay_outbox (id) SELECT id FROM stored)
SELECT id FROM stored)sql";

// Runs after the insert committed, so it sees rows committed by concurrent inserts that won
// the conflict. A replayed id wins over a transactionId match.
constexpr std::string_view find_existing_sql = R"sql(
SELECT k.ord,
       coalesce((SELECT m.id FROM sluice_messages m WHERE m.id = k.id),
                (SELECT m.id FROM sluice_messages m
                  WHERE m.queue = k.queue AND m.transaction_id = k.transaction_id))
FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS k(id, queue, transaction_id, ord)
)sql";

constexpr std::string_view insert_unnest_name = "sluice_insert_messages";
constexpr std::string_view insert_row_name = "sluice_insert_message";
constexpr std::string_view find_existing_name = "sluice_find_messages";

std::string txn_key(const message& m) {
  std::string key = m.queue;
  key += '\0';
  key += *m.transaction_id;
  return key;
}

void add_optional(pg_binary::array_builder& array, const std::optional<std::string>& value) {
  if (value) {
    array.add(*value);
  } else {
    array.add_null();
  }
}

void add_optional(pg_params& params, const std::optional<std::string>& value) {
  if (value) {
    params.add_text_bytes(*value);
  } else {
    params.add_null(pg_type::text);
  }
}

pg_statement unnest_statement(const std::vector<message>& batch,
                              const std::vector<std::size_t>& items) {
  using pg_binary::array_builder;
  const std::size_t n = items.size();
  std::size_t payload_bytes = 0;
  for (std::size_t i : items)
    payload_bytes += batch[i].payload.size() + 4;
  array_builder ids(pg_type::uuid, n * 20), queues(pg_type::text), partitions(pg_type::text),
      namespaces(pg_type::text), tasks(pg_type::text), traces(pg_type::text), txns(pg_type::text),
      payloads(pg_type::json, payload_bytes), created(pg_type::timestamptz, n * 12),
      events(pg_type::timestamptz, n * 4);
  for (std::size_t i : items) {
    const message& m = batch[i];
    ids.add_uuid(m.id);
    queues.add(m.queue);
    partitions.add(m.partition);
    add_optional(namespaces, m.namespace_);
    add_optional(tasks, m.task);
    add_optional(traces, m.trace_id);
    add_optional(txns, m.transaction_id);
    payloads.add(m.payload);
    created.add_int64(pg_binary::timestamptz_from_unix_ms(m.created_ms));
    if (m.event_us) {
      events.add_int64(pg_binary::timestamptz_from_unix_us(*m.event_us));
    } else {
      events.add_null();
    }
  }
  pg_statement s{.sql = insert_unnest_sql, .name = insert_unnest_name};
  s.params.add_binary(ids.bytes(), pg_type::uuid_array);
  s.params.add_binary(queues.bytes(), pg_type::text_array);
  s.params.add_binary(partitions.bytes(), pg_type::text_array);
  s.params.add_binary(namespaces.bytes(), pg_type::text_array);
  s.params.add_binary(tasks.bytes(), pg_type::text_array);
  s.params.add_binary(traces.bytes(), pg_type::text_array);
  s.params.add_binary(txns.bytes(), pg_type::text_array);
  s.params.add_binary(payloads.bytes(), pg_type::json_array);
  s.params.add_binary(created.bytes(), pg_type::timestamptz_array);
  s.params.add_binary(events.bytes(), pg_type::timestamptz_array);
  return s;
}

std::vector<pg_statement> row_statements(const std::vector<message>& batch,
                                         const std::vector<std::size_t>& items) {
  std::vector<pg_statement> out;
  out.reserve(items.size());
  std::string created;
  for (std::size_t i : items) {
    const message& m = batch[i];
    pg_statement& s =
        out.emplace_back(pg_statement{.sql = insert_row_sql, .name = insert_row_name});
    s.params.add(m.id);
    s.params.add_text_bytes(m.queue);
    s.params.add_text_bytes(m.partition);
    add_optional(s.params, m.namespace_);
    add_optional(s.params, m.task);
    add_optional(s.params, m.trace_id);
    add_optional(s.params, m.transaction_id);
    s.params.add_binary(m.payload, pg_type::json);
    created.clear();
    pg_binary::put_int64(created, pg_binary::timestamptz_from_unix_ms(m.created_ms));
    s.params.add_binary(created, pg_type::timestamptz);
    if (m.event_us) {
      std::string event;
      pg_binary::put_int64(event, pg_binary::timestamptz_from_unix_us(*m.event_us));
      s.params.add_binary(event, pg_type::timestamptz);
    } else {
      s.params.add_null(pg_type::timestamptz);
    }
  }
  return out;
}

pg_statement find_existing_statement(const std::vector<message>& batch,
                                     const std::vector<std::size_t>& items) {
  pg_binary::array_builder ids(pg_type::uuid), queues(pg_type::text), txns(pg_type::text);
  for (std::size_t i : items) {
    ids.add_uuid(batch[i].id);
    queues.add(batch[i].queue);
    add_optional(txns, batch[i].transaction_id);
  }
  pg_statement s{.sql = find_existing_sql, .name = find_existing_name};
  s.params.add_binary(ids.bytes(), pg_type::uuid_array);
  s.params.add_binary(queues.bytes(), pg_type::text_array);
  s.params.add_binary(txns.bytes(), pg_type::text_array);
  return s;
}

void set_error(insert_result& out, std::error_code ec, std::string sqlstate, std::string message) {
  out.ec = ec;
  out.sqlstate = std::move(sqlstate);
  out.message = message.empty() ? ec.message() : std::move(message);
}

}  // namespace

message_store::message_store(pg_pool& pool, message_store_options options)
    : pool_(pool), options_(options) {}

asio::awaitable<std::error_code> message_store::ping(clock::time_point deadline) {
  co_return co_await pool_.ping(deadline);
}

asio::awaitable<insert_result> message_store::insert_batch(const std::vector<message>& batch,
                                                           clock::time_point deadline) {
  insert_result out;
  if (batch.empty())
    co_return out;

  // Repeats inside the batch never reach the server: `first[i]` is the earlier item that
  // item i repeats (same id, or same queue + transactionId); `items` are the rest.
  std::vector<std::optional<std::size_t>> first(batch.size());
  std::vector<std::size_t> items;
  items.reserve(batch.size());
  std::unordered_map<uuid, std::size_t, uuid_hash> by_id;
  std::unordered_map<std::string, std::size_t> by_txn;
  by_id.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const message& m = batch[i];
    if (auto it = by_id.find(m.id); it != by_id.end()) {
      first[i] = it->second;
      continue;
    }
    if (m.transaction_id) {
      auto [it, inserted] = by_txn.try_emplace(txn_key(m), i);
      if (!inserted) {
        first[i] = it->second;
        continue;
      }
    }
    by_id.emplace(m.id, i);
    items.push_back(i);
  }

  auto [acquire_ec, lease] = co_await pool_.acquire(deadline);
  if (acquire_ec) {
    set_error(out, acquire_ec, {}, {});
    co_return out;
  }

  std::vector<bool> inserted(batch.size(), false);
  bool inserted_known = false;
  if (options_.strategy == insert_strategy::unnest) {
    const pg_result r = co_await lease->execute(unnest_statement(batch, items), deadline);
    if (!r.ec) {
      for (const auto& row : r.rows) {
        const auto id = row.at(0) ? uuid::parse(*row.at(0)) : std::nullopt;
        const auto it = id ? by_id.find(*id) : by_id.end();
        if (it == by_id.end()) {
          set_error(out, errc::duplicate_unresolved, {}, "insert returned an unknown id");
          co_return out;
        }
        inserted[it->second] = true;
      }
      inserted_known = true;
    } else if (r.failure() != failure_kind::rejected || items.size() == 1) {
      set_error(out, r.ec, r.sqlstate, r.message);
      if (r.failure() == failure_kind::rejected)
        out.rejected_index = items.front();
      co_return out;
    } else {
      // The whole statement was rolled back; row by row tells which item is at fault.
      spdlog::debug("store: batch rejected, locating item sqlstate={} error=\"{}\"", r.sqlstate,
                    r.message);
    }
  }
  if (!inserted_known) {
    const std::vector<pg_statement> statements = row_statements(batch, items);
    const pg_pipeline_result r = co_await lease->execute_pipeline(statements, deadline);
    if (r.ec) {
      set_error(out, r.ec, r.sqlstate, r.message);
      if (r.failed_index && r.failure() == failure_kind::rejected) {
        out.rejected_index = items[*r.failed_index];
      }
      co_return out;
    }
    for (std::size_t k = 0; k < items.size(); ++k) {
      inserted[items[k]] = !r.results[k].rows.empty();
    }
  }

  std::vector<std::optional<uuid>> existing(batch.size());
  std::vector<std::size_t> conflicts;
  for (std::size_t i : items) {
    if (!inserted[i])
      conflicts.push_back(i);
  }
  if (!conflicts.empty()) {
    const pg_result r =
        co_await lease->execute(find_existing_statement(batch, conflicts), deadline);
    if (r.ec) {
      set_error(out, r.ec, r.sqlstate, r.message);
      co_return out;
    }
    for (const auto& row : r.rows) {
      if (!row.at(0) || !row.at(1))
        continue;
      const std::size_t ord = std::stoul(*row.at(0));
      if (ord >= 1 && ord <= conflicts.size())
        existing[conflicts[ord - 1]] = uuid::parse(*row.at(1));
    }
    for (std::size_t i : conflicts) {
      if (!existing[i]) {
        // The conflicting row vanished between the insert and the lookup (deleted meanwhile):
        // the caller keeps the batch and retries, which then stores it.
        set_error(out, errc::duplicate_unresolved, {}, {});
        co_return out;
      }
    }
  }

  out.items.resize(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (first[i]) {
      out.items[i] = {insert_status::duplicate, out.items[*first[i]].id};
    } else if (inserted[i]) {
      out.items[i] = {insert_status::stored, batch[i].id};
    } else {
      out.items[i] = {insert_status::duplicate, *existing[i]};
    }
  }
  co_return out;
}

}  // namespace sluice::store
