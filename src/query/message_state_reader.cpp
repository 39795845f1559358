#include "sluice/query/message_state_reader.hpp"

#include "sluice/query/row_values.hpp"

namespace sluice::query {
namespace asio = boost::asio;

namespace {

constexpr std::string_view message_sql = R"sql(
SELECT m.id, m.queue, m.partition, floor(extract(epoch FROM m.created_at) * 1000)::int8,
       (extract(epoch FROM coalesce(m.event_time, m.created_at)) * 1000000)::int8,
       m.trace_id, m.transaction_id, m.payload, floor(extract(epoch FROM m.stored_at) * 1000)::int8,
       o.id IS NOT NULL
  FROM sluice_messages m LEFT JOIN sluice_relay_outbox o ON o.id = m.id
 WHERE m.id = $1)sql";

// Every subscription that has or had to do with the message: the queue's current ones and
// any with attempts or a dead letter for it (deleted since, or of a broadcast the message
// reached before a subscription was removed).
constexpr std::string_view deliveries_sql = R"sql(
WITH names AS (
  SELECT name FROM sluice_subscriptions WHERE queue = $2
  UNION SELECT subscription FROM sluice_delivery_attempts WHERE message_id = $1 AND queue = $2
  UNION SELECT subscription FROM sluice_dead_letters WHERE id = $1 AND queue = $2
)
SELECT n.name, s.name IS NOT NULL, a.attempts,
       floor(extract(epoch FROM a.last_at) * 1000)::int8, a.last_outcome, a.last_status,
       r.attempt, floor(extract(epoch FROM r.due_at) * 1000)::int8, r.origin,
       d.reason, d.attempts, d.last_status, floor(extract(epoch FROM d.dead_at) * 1000)::int8
  FROM names n
  LEFT JOIN sluice_subscriptions s ON s.queue = $2 AND s.name = n.name
  LEFT JOIN LATERAL (
    SELECT count(*) AS attempts, max(attempted_at) AS last_at,
           (array_agg(outcome ORDER BY attempted_at DESC, attempt DESC))[1] AS last_outcome,
           (array_agg(status ORDER BY attempted_at DESC, attempt DESC))[1] AS last_status
      FROM sluice_delivery_attempts
     WHERE message_id = $1 AND queue = $2 AND subscription = n.name) a ON true
  LEFT JOIN sluice_delivery_retries r
    ON r.queue = $2 AND r.subscription = n.name AND r.message_id = $1
  LEFT JOIN sluice_dead_letters d ON d.id = $1 AND d.queue = $2 AND d.subscription = n.name
 ORDER BY n.name)sql";

}  // namespace

asio::awaitable<message_state> message_state_reader::read(const uuid& id,
                                                          store::clock::time_point deadline) {
  message_state out;
  store::pg_statement s{.sql = message_sql, .name = "sluice_query_message"};
  s.params.add(id);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec) {
    out.status = store::status_of(r);
    co_return out;
  }
  if (r.rows.empty())
    co_return out;
  const auto& row = r.rows[0];
  const auto created = row.size() == 10 ? to_int64(row[3]) : std::nullopt;
  const auto event = row.size() == 10 ? to_int64(row[4]) : std::nullopt;
  const auto stored = row.size() == 10 ? to_int64(row[8]) : std::nullopt;
  if (!created || !event || !stored || !row[1] || !row[2] || !row[7] || !row[9]) {
    out.status = unexpected_answer("unexpected message row");
    co_return out;
  }
  out.message = stored_message{id, *row[1], *row[2], *created, *event, row[5], row[6], *row[7]};
  out.stored_ms = *stored;
  out.unpublished = *row[9] == "t";

  store::pg_statement d{.sql = deliveries_sql, .name = "sluice_query_message_deliveries"};
  d.params.add(id);
  d.params.add_text_bytes(out.message->queue);
  const store::pg_result dr = co_await pool_.execute(d, deadline);
  if (dr.ec) {
    out.status = store::status_of(dr);
    out.message.reset();
    co_return out;
  }
  for (const auto& v : dr.rows) {
    if (v.size() != 13 || !v[0] || !v[1] || !to_int64(v[2])) {
      out.status = unexpected_answer("unexpected delivery row");
      out.message.reset();
      out.subscriptions.clear();
      co_return out;
    }
    subscription_state st;
    st.subscription = *v[0];
    st.subscribed = *v[1] == "t";
    st.attempts = *to_int64(v[2]);
    st.last_attempt_ms = to_int64(v[3]);
    st.last_outcome = v[4];
    st.last_status = to_int64(v[5]);
    st.retry_attempt = to_int64(v[6]);
    st.retry_due_ms = to_int64(v[7]);
    st.retry_origin = v[8];
    st.dead_reason = v[9];
    st.dead_attempts = to_int64(v[10]);
    st.dead_last_status = to_int64(v[11]);
    st.dead_at_ms = to_int64(v[12]);
    out.subscriptions.push_back(std::move(st));
  }
  co_return out;
}

}  // namespace sluice::query
