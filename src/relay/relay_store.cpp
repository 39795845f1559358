#include "sluice/relay/relay_store.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "sluice/store/pg_binary.hpp"

namespace sluice::relay {
namespace asio = boost::asio;

namespace {

// The inner SELECT walks the outbox's primary key in id order and stops after $3 rows that pass
// the filters; ARRAY(...) makes PostgreSQL run it once, first, then update the chosen outbox
// rows through the key; the messages are read by id.
constexpr std::string_view claim_sql = R"sql(
WITH claimed AS (
  UPDATE sluice_relay_outbox o
     SET claimed_until = now() + $2::int8 * interval '1 millisecond'
   WHERE o.id = ANY(ARRAY(
           SELECT u.id FROM sluice_relay_outbox u
            WHERE u.stored_at < now() - $1::int8 * interval '1 millisecond'
              AND (u.claimed_until IS NULL OR u.claimed_until < now())
            ORDER BY u.id
            LIMIT $3::int8
            FOR UPDATE SKIP LOCKED))
  RETURNING o.id)
SELECT m.id, m.queue, m.partition, m.namespace, m.task, m.trace_id, m.transaction_id,
       m.payload, (extract(epoch FROM m.created_at) * 1000)::int8
  FROM claimed JOIN sluice_messages m ON m.id = claimed.id)sql";

constexpr std::string_view release_sql = R"sql(
UPDATE sluice_relay_outbox SET claimed_until = NULL WHERE id = ANY($1::uuid[]))sql";

constexpr std::string_view hold_sql = R"sql(
UPDATE sluice_relay_outbox SET claimed_until = now() + $2::int8 * interval '1 millisecond'
 WHERE id = ANY($1::uuid[]))sql";

// Deleting twice (a row that went out twice) deletes nothing the second time.
constexpr std::string_view mark_sql = R"sql(
DELETE FROM sluice_relay_outbox WHERE id = ANY($1::uuid[]))sql";

// The count reads the small outbox; the oldest row is its first entry in id order.
constexpr std::string_view backlog_sql = R"sql(
SELECT (SELECT count(*) FROM sluice_relay_outbox),
       (SELECT extract(epoch FROM now() - m.created_at)::float8
          FROM sluice_relay_outbox o JOIN sluice_messages m ON m.id = o.id
         ORDER BY o.id LIMIT 1))sql";

// The server's or libpq's text when there is one, else what the error code says.
std::string error_text(const store::pg_result& r) {
  return r.message.empty() ? r.ec.message() : r.message;
}

std::optional<std::string> opt(const std::optional<std::string>& v) {
  return v;
}

bool to_int64(const std::optional<std::string>& text, std::int64_t& out) {
  if (!text)
    return false;
  const auto* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, out);
  return ec == std::errc{} && ptr == end;
}

}  // namespace

relay_store::relay_store(store::pg_pool& pool) : pool_(pool) {}

asio::awaitable<claim_result> relay_store::claim(const claim_options& options,
                                                 store::clock::time_point deadline) {
  claim_result out;
  store::pg_statement s{.sql = claim_sql, .name = "sluice_relay_claim"};
  s.params.add(static_cast<std::int64_t>(options.grace.count()));
  s.params.add(static_cast<std::int64_t>(options.lease.count()));
  s.params.add(static_cast<std::int64_t>(options.batch));
  store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec) {
    out.ec = r.ec;
    out.error_text = error_text(r);
    co_return out;
  }
  out.rows.reserve(r.rows.size());
  for (auto& row : r.rows) {
    if (row.size() != 9 || !row[0] || !row[1] || !row[2] || !row[7])
      continue;
    const auto id = uuid::parse(*row[0]);
    std::int64_t created_ms = 0;
    if (!id || !to_int64(row[8], created_ms))
      continue;
    message m;
    m.id = *id;
    m.created_ms = created_ms;
    m.queue = std::move(*row[1]);
    m.partition = std::move(*row[2]);
    m.namespace_ = opt(row[3]);
    m.task = opt(row[4]);
    m.trace_id = opt(row[5]);
    m.transaction_id = opt(row[6]);
    m.payload = std::move(*row[7]);
    out.rows.push_back(std::move(m));
  }
  std::sort(out.rows.begin(), out.rows.end(),
            [](const message& a, const message& b) { return a.id < b.id; });
  co_return out;
}

namespace {

store::pg_statement ids_statement(std::string_view sql, std::string_view name,
                                  std::span<const uuid> ids) {
  store::pg_binary::array_builder array(store::pg_type::uuid, ids.size() * 20 + 32);
  for (const auto& id : ids)
    array.add_uuid(id);
  store::pg_statement s{.sql = sql, .name = name};
  s.params.add_binary(array.bytes(), store::pg_type::uuid_array);
  return s;
}

}  // namespace

asio::awaitable<std::error_code> relay_store::release(std::span<const uuid> ids,
                                                      store::clock::time_point deadline) {
  if (ids.empty())
    co_return std::error_code{};
  const store::pg_statement s = ids_statement(release_sql, "sluice_relay_release", ids);
  co_return (co_await pool_.execute(s, deadline)).ec;
}

asio::awaitable<std::error_code> relay_store::hold(std::span<const uuid> ids,
                                                   std::chrono::milliseconds lease,
                                                   store::clock::time_point deadline) {
  if (ids.empty())
    co_return std::error_code{};
  store::pg_statement s = ids_statement(hold_sql, "sluice_relay_hold", ids);
  s.params.add(static_cast<std::int64_t>(lease.count()));
  co_return (co_await pool_.execute(s, deadline)).ec;
}

asio::awaitable<mark_result> relay_store::mark_published(std::span<const uuid> ids,
                                                         store::clock::time_point deadline) {
  mark_result out;
  if (ids.empty())
    co_return out;
  const store::pg_statement s = ids_statement(mark_sql, "sluice_relay_mark", ids);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec) {
    out.ec = r.ec;
    out.error_text = error_text(r);
    co_return out;
  }
  out.marked = r.affected_rows;
  co_return out;
}

asio::awaitable<backlog_result> relay_store::backlog(store::clock::time_point deadline) {
  backlog_result out;
  const store::pg_statement s{.sql = backlog_sql, .name = "sluice_relay_backlog"};
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec) {
    out.ec = r.ec;
    out.error_text = error_text(r);
    co_return out;
  }
  if (!r.rows.empty() && r.rows[0].size() == 2) {
    std::int64_t n = 0;
    if (to_int64(r.rows[0][0], n))
      out.rows = static_cast<std::uint64_t>(n);
    if (r.rows[0][1])
      out.oldest_age_seconds = std::max(0.0, std::stod(*r.rows[0][1]));
  }
  co_return out;
}

}  // namespace sluice::relay
