#include "sluice/delivery/retry_store.hpp"

#include <algorithm>
#include <charconv>

#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/store/pg_binary.hpp"
#include "sluice/store/pg_params.hpp"

#include <nlohmann/json.hpp>

namespace sluice::delivery {
namespace asio = boost::asio;

namespace {

constexpr store::oid bytea_oid = 17;

// Times travel as Unix milliseconds; timestamptz 'epoch' + interval keeps them exact (a float
// to_timestamp() would round).
constexpr std::string_view park_sql = R"sql(
INSERT INTO sluice_delivery_retries AS r
       (queue, subscription, message_id, attempt, due_at, origin, partition, headers, created_ms,
        payload, first_attempt_at, claimed_until)
VALUES ($1, $2, $3, $4::int4,
        CASE WHEN $5::int8 IS NULL THEN 'infinity'::timestamptz
             ELSE timestamptz 'epoch' + $5::int8 * interval '1 millisecond' END,
        'retry', $6, $7::jsonb, $8::int8, $9,
        timestamptz 'epoch' + $10::int8 * interval '1 millisecond', NULL)
ON CONFLICT (queue, subscription, message_id) DO UPDATE
   SET attempt = EXCLUDED.attempt, due_at = EXCLUDED.due_at, origin = 'retry',
       partition = EXCLUDED.partition, headers = EXCLUDED.headers,
       created_ms = EXCLUDED.created_ms, payload = EXCLUDED.payload,
       first_attempt_at = COALESCE(r.first_attempt_at, EXCLUDED.first_attempt_at),
       claimed_until = NULL)sql";

// The claim token is claimed_until in microseconds: now() differs between two claims of the
// same row (different transactions), so remove() can tell its own claim from a later one, or
// from a park that replaced the row meanwhile (the consumer got the retry, failed again and
// parked it before this instance deleted the row it published). Rows behind a partition head
// (due_at 'infinity') are never due.
constexpr std::string_view claim_sql = R"sql(
WITH due AS (
  SELECT r.queue, r.subscription, r.message_id
    FROM sluice_delivery_retries r
    JOIN sluice_subscriptions s ON s.queue = r.queue AND s.name = r.subscription
   WHERE r.due_at <= now() AND (r.claimed_until IS NULL OR r.claimed_until < now())
     AND s.paused_at IS NULL
   ORDER BY r.due_at
   LIMIT $1::int8
   FOR UPDATE OF r SKIP LOCKED)
UPDATE sluice_delivery_retries r
   SET claimed_until = now() + $2::int8 * interval '1 millisecond'
  FROM due
 WHERE r.queue = due.queue AND r.subscription = due.subscription
   AND r.message_id = due.message_id
RETURNING r.queue, r.subscription, r.message_id, r.attempt, r.partition, r.headers::text,
          r.created_ms, r.payload, (extract(epoch FROM r.first_attempt_at) * 1000)::int8,
          r.origin, (extract(epoch FROM r.claimed_until) * 1000000)::int8,
          (extract(epoch FROM r.due_at) * 1000)::int8)sql";

constexpr std::string_view remove_sql = R"sql(
DELETE FROM sluice_delivery_retries r
 USING unnest($1::text[], $2::text[], $3::uuid[], $4::int8[]) AS d(queue, subscription, id, token)
 WHERE r.queue = d.queue AND r.subscription = d.subscription AND r.message_id = d.id
   AND (d.token = 0 OR (extract(epoch FROM r.claimed_until) * 1000000)::int8 = d.token))sql";

// Paused subscriptions' rows would only wake the scheduler for nothing.
constexpr std::string_view next_due_sql = R"sql(
SELECT (extract(epoch FROM min(GREATEST(r.due_at, COALESCE(r.claimed_until, r.due_at)))) * 1000)::int8
  FROM sluice_delivery_retries r
  JOIN sluice_subscriptions s ON s.queue = r.queue AND s.name = r.subscription
 WHERE r.due_at <> 'infinity' AND s.paused_at IS NULL)sql";

// The lowest message id of the partition: uuidv7 ids sort in acceptance order. FOR UPDATE
// keeps two instances releasing the same partition from releasing two rows.
constexpr std::string_view release_sql = R"sql(
UPDATE sluice_delivery_retries r SET due_at = now()
 WHERE (r.queue, r.subscription, r.message_id) = (
   SELECT n.queue, n.subscription, n.message_id FROM sluice_delivery_retries n
    WHERE n.queue = $1 AND n.subscription = $2 AND n.partition = $3
      AND n.due_at = 'infinity'
    ORDER BY n.message_id
    LIMIT 1
    FOR UPDATE)
RETURNING r.message_id)sql";

constexpr std::string_view blocked_sql = R"sql(
SELECT DISTINCT partition FROM sluice_delivery_retries WHERE queue = $1 AND subscription = $2)sql";

// Rows behind a head have no due time; their message's acceptance time stands in for it.
constexpr std::string_view orphans_sql = R"sql(
DELETE FROM sluice_delivery_retries
 WHERE ctid = ANY(ARRAY(
   SELECT r.ctid FROM sluice_delivery_retries r
    WHERE NOT EXISTS (SELECT 1 FROM sluice_subscriptions s
                       WHERE s.queue = r.queue AND s.name = r.subscription)
      AND CASE WHEN r.due_at = 'infinity'
               THEN r.created_ms < (extract(epoch FROM now()) * 1000)::int8 - $2::int8
               ELSE r.due_at < now() - $2::int8 * interval '1 millisecond' END
    LIMIT $1::int8
    FOR UPDATE SKIP LOCKED)))sql";

// count(*) walks the whole table; it stays small (messages waiting for a retry, not the
// message log), so a scan every few seconds costs nothing worth an estimate's imprecision.
constexpr std::string_view count_sql = "SELECT count(*) FROM sluice_delivery_retries";

bool to_int64(const std::optional<std::string>& text, std::int64_t& out) {
  if (!text)
    return false;
  const auto* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, out);
  return ec == std::errc{} && ptr == end;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// bytea's text output in the default hex format: "\x" then two hex digits per byte.
std::optional<std::string> from_bytea_hex(std::string_view text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0)
    return std::nullopt;
  std::string out;
  out.reserve((text.size() - 2) / 2);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    const int hi = hex_value(text[i]);
    const int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string headers_json(const std::vector<std::pair<std::string, std::string>>& headers) {
  // jsonb refuses "\u0000" as text refuses NUL.
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [name, value] : headers)
    object[as_postgres_text(name)] = as_postgres_text(value);
  return object.dump();
}

bool parse_headers(const std::string& text, std::vector<std::pair<std::string, std::string>>& out) {
  const auto object = nlohmann::json::parse(text, nullptr, false);
  if (!object.is_object())
    return false;
  for (const auto& [name, value] : object.items()) {
    if (value.is_string())
      out.emplace_back(name, value.get<std::string>());
  }
  return true;
}

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

store::pg_statement park_statement(const parked_message& m,
                                   std::optional<std::chrono::system_clock::time_point> due) {
  store::pg_statement s{.sql = park_sql, .name = "sluice_delivery_retry_park"};
  s.params.add_text_bytes(m.queue);
  s.params.add_text_bytes(m.subscription);
  s.params.add(m.message_id);
  s.params.add(static_cast<std::int32_t>(m.attempt));
  if (due)
    s.params.add(unix_ms(*due));
  else
    s.params.add_null(store::pg_type::int8);
  s.params.add_text_bytes(as_postgres_text(m.partition));
  s.params.add_text_bytes(headers_json(m.headers));
  s.params.add(m.created_ms);
  s.params.add_binary(m.payload, bytea_oid);
  if (m.first_attempt_ms)
    s.params.add(*m.first_attempt_ms);
  else
    s.params.add_null(store::pg_type::int8);
  return s;
}

}  // namespace

retry_store::retry_store(store::pg_pool& pool) : pool_(pool) {}

std::error_code retry_store::failed(const store::pg_result& r) {
  last_error_ = r.message.empty() ? r.ec.message() : r.message;
  return r.ec;
}

asio::awaitable<std::error_code> retry_store::park(const parked_message& m,
                                                   system_clock::time_point due,
                                                   store::clock::time_point deadline) {
  const store::pg_statement s = park_statement(m, due);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  co_return r.ec ? failed(r) : std::error_code{};
}

asio::awaitable<std::error_code> retry_store::park_behind(const parked_message& m,
                                                          store::clock::time_point deadline) {
  const store::pg_statement s = park_statement(m, std::nullopt);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  co_return r.ec ? failed(r) : std::error_code{};
}

asio::awaitable<std::tuple<std::error_code, bool>> retry_store::release_next(
    std::string_view queue, std::string_view subscription, std::string_view partition,
    store::clock::time_point deadline) {
  store::pg_statement s{.sql = release_sql, .name = "sluice_delivery_retry_release"};
  s.params.add_text_bytes(queue);
  s.params.add_text_bytes(subscription);
  s.params.add_text_bytes(partition);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::tuple{failed(r), false};
  co_return std::tuple{std::error_code{}, !r.rows.empty()};
}

asio::awaitable<std::tuple<std::error_code, std::set<std::string>>> retry_store::blocked_partitions(
    std::string_view queue, std::string_view subscription, store::clock::time_point deadline) {
  store::pg_statement s{.sql = blocked_sql, .name = "sluice_delivery_retry_blocked"};
  s.params.add_text_bytes(queue);
  s.params.add_text_bytes(subscription);
  store::pg_result r = co_await pool_.execute(s, deadline);
  std::set<std::string> out;
  if (r.ec)
    co_return std::tuple{failed(r), std::move(out)};
  for (auto& row : r.rows) {
    if (!row.empty() && row[0])
      out.insert(std::move(*row[0]));
  }
  co_return std::tuple{std::error_code{}, std::move(out)};
}

asio::awaitable<std::tuple<std::error_code, std::vector<parked_message>>> retry_store::claim_due(
    std::size_t limit, std::chrono::milliseconds lease, store::clock::time_point deadline) {
  store::pg_statement s{.sql = claim_sql, .name = "sluice_delivery_retry_claim"};
  s.params.add(static_cast<std::int64_t>(limit));
  s.params.add(static_cast<std::int64_t>(lease.count()));
  store::pg_result r = co_await pool_.execute(s, deadline);
  std::vector<parked_message> out;
  if (r.ec)
    co_return std::tuple{failed(r), std::move(out)};
  // RETURNING has no order of its own: the scheduler publishes the earliest due first.
  std::vector<std::pair<std::int64_t, parked_message>> due;
  due.reserve(r.rows.size());
  for (auto& row : r.rows) {
    if (row.size() != 12 || !row[0] || !row[1] || !row[2] || !row[4] || !row[5] || !row[7])
      continue;
    const auto id = uuid::parse(*row[2]);
    std::int64_t attempt = 0;
    std::int64_t created_ms = 0;
    std::int64_t token = 0;
    std::int64_t due_ms = 0;
    auto payload = from_bytea_hex(*row[7]);
    if (!id || !payload || !to_int64(row[3], attempt) || !to_int64(row[6], created_ms) ||
        !to_int64(row[10], token))
      continue;
    to_int64(row[11], due_ms);
    parked_message m;
    m.queue = std::move(*row[0]);
    m.subscription = std::move(*row[1]);
    m.message_id = *id;
    m.attempt = attempt < 1 ? 1 : static_cast<std::uint32_t>(attempt);
    m.partition = std::move(*row[4]);
    if (!parse_headers(*row[5], m.headers))
      continue;
    m.created_ms = created_ms;
    m.payload = std::move(*payload);
    std::int64_t first = 0;
    if (to_int64(row[8], first))
      m.first_attempt_ms = first;
    m.redrive = row[9] && *row[9] == "redrive";
    m.claim_token = token;
    due.emplace_back(due_ms, std::move(m));
  }
  std::stable_sort(due.begin(), due.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  out.reserve(due.size());
  for (auto& [at, m] : due)
    out.push_back(std::move(m));
  co_return std::tuple{std::error_code{}, std::move(out)};
}

asio::awaitable<std::error_code> retry_store::remove(const std::vector<parked_message>& done,
                                                     store::clock::time_point deadline) {
  if (done.empty())
    co_return std::error_code{};
  store::pg_binary::array_builder queues(store::pg_type::text);
  store::pg_binary::array_builder subscriptions(store::pg_type::text);
  store::pg_binary::array_builder ids(store::pg_type::uuid, done.size() * 20 + 32);
  store::pg_binary::array_builder tokens(store::pg_type::int8, done.size() * 12 + 32);
  for (const auto& m : done) {
    queues.add(m.queue);
    subscriptions.add(m.subscription);
    ids.add_uuid(m.message_id);
    tokens.add_int64(m.claim_token);
  }
  store::pg_statement s{.sql = remove_sql, .name = "sluice_delivery_retry_remove"};
  s.params.add_binary(queues.bytes(), store::pg_type::text_array);
  s.params.add_binary(subscriptions.bytes(), store::pg_type::text_array);
  s.params.add_binary(ids.bytes(), store::pg_type::uuid_array);
  s.params.add_binary(tokens.bytes(), store::pg_type::int8_array);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  co_return r.ec ? failed(r) : std::error_code{};
}

asio::awaitable<std::tuple<std::error_code, std::optional<retry_store::system_clock::time_point>>>
retry_store::next_due(store::clock::time_point deadline) {
  const store::pg_statement s{.sql = next_due_sql, .name = "sluice_delivery_retry_next_due"};
  const store::pg_result r = co_await pool_.execute(s, deadline);
  std::optional<system_clock::time_point> out;
  if (r.ec)
    co_return std::tuple{failed(r), out};
  std::int64_t ms = 0;
  if (!r.rows.empty() && !r.rows[0].empty() && to_int64(r.rows[0][0], ms))
    out = system_clock::time_point(std::chrono::milliseconds(ms));
  co_return std::tuple{std::error_code{}, out};
}

asio::awaitable<std::tuple<std::error_code, std::uint64_t>> retry_store::remove_orphans(
    std::size_t limit, std::chrono::milliseconds grace, store::clock::time_point deadline) {
  store::pg_statement s{.sql = orphans_sql, .name = "sluice_delivery_retry_orphans"};
  s.params.add(static_cast<std::int64_t>(limit));
  s.params.add(static_cast<std::int64_t>(grace.count()));
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::tuple{failed(r), std::uint64_t{0}};
  co_return std::tuple{std::error_code{}, r.affected_rows};
}

asio::awaitable<std::tuple<std::error_code, std::uint64_t>> retry_store::count(
    store::clock::time_point deadline) {
  const store::pg_statement s{.sql = count_sql, .name = "sluice_delivery_retry_count"};
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::tuple{failed(r), std::uint64_t{0}};
  std::int64_t n = 0;
  if (!r.rows.empty() && !r.rows[0].empty())
    to_int64(r.rows[0][0], n);
  co_return std::tuple{std::error_code{}, static_cast<std::uint64_t>(n < 0 ? 0 : n)};
}

}  // namespace sluice::delivery
