#include "sluice/delivery/dead_letter_store.hpp"

#include <string_view>

#include "sluice/core/utf8.hpp"
#include "sluice/delivery/dlq_values.hpp"
#include "sluice/store/pg_binary.hpp"

namespace sluice::delivery {
namespace asio = boost::asio;
using namespace dlq_values;

namespace {

// The retry row goes in the same statement: a message is either parked or dead, never both
// (a dead letter whose stale retry row fired later would be delivered behind the DLQ's back).
constexpr std::string_view insert_sql = R"sql(
WITH parked AS (
  DELETE FROM sluice_delivery_retries
   WHERE queue = $2 AND subscription = $3 AND message_id = $1)
INSERT INTO sluice_dead_letters
  (id, queue, subscription, reason, last_status, attempts, first_attempt_at, last_attempt_at,
   response_excerpt, partition, headers, created_ms, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13)
ON CONFLICT (id, queue, subscription) DO UPDATE
  SET reason = EXCLUDED.reason, last_status = EXCLUDED.last_status,
      attempts = EXCLUDED.attempts, first_attempt_at = EXCLUDED.first_attempt_at,
      last_attempt_at = EXCLUDED.last_attempt_at, response_excerpt = EXCLUDED.response_excerpt,
      partition = EXCLUDED.partition, headers = EXCLUDED.headers,
      created_ms = EXCLUDED.created_ms, payload = EXCLUDED.payload, dead_at = now())sql";

// Columns 0..12 of every read; the payload (13) only where one row is read.
#define SLUICE_DEAD_LETTER_COLUMNS                                                             \
  "d.id, d.queue, d.subscription, d.reason, d.last_status, d.attempts,"                        \
  " (extract(epoch FROM d.first_attempt_at) * 1000000)::int8,"                                 \
  " (extract(epoch FROM d.last_attempt_at) * 1000000)::int8, d.response_excerpt, d.partition," \
  " d.headers, d.created_ms, (extract(epoch FROM d.dead_at) * 1000000)::int8"

// Unnamed (planned with the values): an absent filter folds away and the indexes apply.
constexpr std::string_view list_sql = "SELECT " SLUICE_DEAD_LETTER_COLUMNS R"sql(
  FROM sluice_dead_letters d
 WHERE ($1::text IS NULL OR d.queue = $1)
   AND ($2::text IS NULL OR d.subscription = $2)
   AND ($3::timestamptz IS NULL OR d.dead_at >= $3)
   AND ($4::timestamptz IS NULL OR d.dead_at < $4)
   AND ($5::timestamptz IS NULL
        OR (d.dead_at, d.id, d.queue, d.subscription) > ($5, $6::uuid, $7::text, $8::text))
 ORDER BY d.dead_at, d.id, d.queue, d.subscription
 LIMIT $9::int8)sql";

constexpr std::string_view find_sql = "SELECT " SLUICE_DEAD_LETTER_COLUMNS R"sql(, d.payload
  FROM sluice_dead_letters d
 WHERE d.id = $1 AND ($2::text IS NULL OR d.queue = $2)
   AND ($3::text IS NULL OR d.subscription = $3)
 ORDER BY d.queue, d.subscription)sql";

#undef SLUICE_DEAD_LETTER_COLUMNS

constexpr std::string_view remove_sql = R"sql(
DELETE FROM sluice_dead_letters WHERE id = $1 AND queue = $2 AND subscription = $3)sql";

// One statement, so the dead letter is gone exactly when its retry row exists. A retry row the
// message may still have (it cannot, after insert(), unless it was pushed again with the same
// id) is replaced: the re-drive is what the operator asked for. Only into a subscription that
// exists: a missing one's retry rows are never claimed and are deleted as orphans, so the
// message would be lost; its dead letter stays instead.
constexpr std::string_view redrive_sql = R"sql(
WITH moved AS (
  DELETE FROM sluice_dead_letters d
   WHERE d.id = $1 AND d.queue = $2 AND d.subscription = $3
     AND EXISTS (SELECT 1 FROM sluice_subscriptions s
                  WHERE s.queue = d.queue AND s.name = d.subscription)
  RETURNING d.id, d.queue, d.subscription, d.partition, d.headers, d.created_ms, d.payload)
INSERT INTO sluice_delivery_retries
  (queue, subscription, message_id, attempt, due_at, origin, partition, headers, created_ms,
   payload)
SELECT queue, subscription, id, 1, now(), 'redrive', partition, headers, created_ms, payload
  FROM moved
ON CONFLICT (queue, subscription, message_id) DO UPDATE
  SET attempt = 1, due_at = now(), origin = 'redrive', partition = EXCLUDED.partition,
      headers = EXCLUDED.headers, created_ms = EXCLUDED.created_ms, payload = EXCLUDED.payload,
      first_attempt_at = NULL, claimed_until = NULL)sql";

constexpr std::string_view count_sql = R"sql(
SELECT queue, count(*) FROM sluice_dead_letters GROUP BY queue)sql";

// Year 9999 in Unix microseconds: beyond anything dead_at holds.
constexpr std::int64_t max_cursor_us = 253'402'300'799'000'000;

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out += static_cast<char>((v >> shift) & 0xff);
}

std::uint64_t get_u64(std::string_view bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

std::optional<dead_letter> dead_letter_of(const std::vector<std::optional<std::string>>& row,
                                          bool with_payload, std::int64_t* dead_us) {
  if (row.size() < (with_payload ? 14u : 13u))
    return std::nullopt;
  dead_letter d;
  parked_message& m = d.message;
  const auto id = row[0] ? uuid::parse(*row[0]) : std::nullopt;
  const auto attempts = to_int64(row[5]);
  const auto first_us = to_int64(row[6]);
  const auto last_us = to_int64(row[7]);
  const auto created = to_int64(row[11]);
  const auto dead = to_int64(row[12]);
  if (!id || !row[1] || !row[2] || !row[3] || !attempts || !first_us || !last_us || !row[9] ||
      !row[10] || !created || !dead)
    return std::nullopt;
  m.message_id = *id;
  m.queue = *row[1];
  m.subscription = *row[2];
  d.reason = *row[3];
  if (const auto status = to_int64(row[4]))
    d.last_status = static_cast<int>(*status);
  m.attempt = static_cast<std::uint32_t>(*attempts);
  d.first_attempt_ms = *first_us / 1000;
  d.last_attempt_ms = *last_us / 1000;
  m.first_attempt_ms = d.first_attempt_ms;
  d.response_excerpt = row[8].value_or("");
  m.partition = *row[9];
  m.headers = headers_from_json(*row[10]);
  m.created_ms = *created;
  d.dead_ms = *dead / 1000;
  if (dead_us)
    *dead_us = *dead;
  if (with_payload) {
    auto payload = from_bytea_hex(row[13]);
    if (!payload)
      return std::nullopt;
    m.payload = std::move(*payload);
  }
  return d;
}

dlq_status bad_row() {
  dlq_status s;
  s.ec = store::errc::query_failed;
  s.message = "unexpected dead letter row";
  return s;
}

}  // namespace

std::string dead_letter_key::encode() const {
  std::string out;
  store::pg_binary::put_int64(out, dead_us);
  out.append(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
  put_u32(out, static_cast<std::uint32_t>(queue.size()));
  out += queue;
  out += subscription;
  return out;
}

std::optional<dead_letter_key> dead_letter_key::decode(std::string_view position) {
  if (position.size() < 28)
    return std::nullopt;
  dead_letter_key k;
  k.dead_us = static_cast<std::int64_t>(get_u64(position));
  // Crafted positions pass the checksum too: a time PostgreSQL cannot hold is refused here.
  if (k.dead_us < 0 || k.dead_us > max_cursor_us)
    return std::nullopt;
  for (std::size_t i = 0; i < 16; ++i)
    k.id.bytes[i] = static_cast<std::uint8_t>(position[8 + i]);
  std::uint32_t queue_len = 0;
  for (std::size_t i = 24; i < 28; ++i)
    queue_len = (queue_len << 8) | static_cast<unsigned char>(position[i]);
  if (queue_len > position.size() - 28)
    return std::nullopt;
  k.queue = std::string(position.substr(28, queue_len));
  k.subscription = std::string(position.substr(28 + queue_len));
  // The position is untrusted input: PostgreSQL would refuse invalid UTF-8 as a 400's cause.
  if (!is_valid_utf8(k.queue) || !is_valid_utf8(k.subscription))
    return std::nullopt;
  return k;
}

std::string excerpt_of(std::string_view text, std::size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max));
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t n = utf8_sequence_length(text.substr(i));
    // NUL is valid UTF-8, but PostgreSQL's text refuses it as it refuses invalid bytes.
    if (n == 0 || text[i] == '\0') {
      if (out.size() + 3 > max)
        break;
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    if (out.size() + n > max)
      break;
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string as_postgres_text(std::string_view text) {
  // A replaced byte takes three: room for every byte to be one.
  return excerpt_of(text, text.size() * 3);
}

dead_letter_store::dead_letter_store(store::pg_pool& pool) : pool_(pool) {}

asio::awaitable<std::error_code> dead_letter_store::insert(const dead_letter& d,
                                                           store::clock::time_point deadline) {
  const parked_message& m = d.message;
  store::pg_statement s{.sql = insert_sql, .name = "sluice_dead_letter_insert"};
  s.params.add(m.message_id);
  s.params.add_text_bytes(m.queue);
  s.params.add_text_bytes(m.subscription);
  s.params.add_text_bytes(d.reason);
  if (d.last_status) {
    s.params.add(static_cast<std::int32_t>(*d.last_status));
  } else {
    s.params.add_null(store::pg_type::int4);
  }
  s.params.add(static_cast<std::int32_t>(m.attempt));
  add_time_ms(s.params, d.first_attempt_ms);
  add_time_ms(s.params, d.last_attempt_ms);
  if (d.response_excerpt.empty()) {
    s.params.add_null(store::pg_type::text);
  } else {
    s.params.add_text_bytes(excerpt_of(d.response_excerpt));
  }
  s.params.add_text_bytes(as_postgres_text(m.partition));
  s.params.add_text_bytes(headers_json(m.headers));
  s.params.add(m.created_ms);
  s.params.add_binary(m.payload, bytea_type);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  co_return r.ec;
}

asio::awaitable<dead_letter_page> dead_letter_store::list(
    const dead_letter_filter& filter, const std::optional<dead_letter_key>& after,
    std::size_t limit, store::clock::time_point deadline) {
  dead_letter_page out;
  store::pg_statement s{.sql = list_sql};
  add_optional_text(s.params, filter.queue);
  add_optional_text(s.params, filter.subscription);
  add_optional_time_ms(s.params, filter.start_ms);
  add_optional_time_ms(s.params, filter.end_ms);
  if (after) {
    add_time_us(s.params, after->dead_us);
    s.params.add(after->id);
    s.params.add_text_bytes(after->queue);
    s.params.add_text_bytes(after->subscription);
  } else {
    s.params.add_null(store::pg_type::timestamptz);
    s.params.add_null(store::pg_type::uuid);
    s.params.add_null(store::pg_type::text);
    s.params.add_null(store::pg_type::text);
  }
  // One more than asked: whether a next page exists without a second query.
  s.params.add(static_cast<std::int64_t>(limit + 1));
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec) {
    out.status = status_of(r);
    co_return out;
  }
  std::int64_t last_us = 0;
  for (const auto& row : r.rows) {
    if (out.items.size() == limit) {
      const dead_letter& last = out.items.back();
      out.next = dead_letter_key{last_us, last.message.message_id, last.message.queue,
                                 last.message.subscription};
      break;
    }
    auto d = dead_letter_of(row, false, &last_us);
    if (!d) {
      out.status = bad_row();
      out.items.clear();
      co_return out;
    }
    out.items.push_back(std::move(*d));
  }
  co_return out;
}

asio::awaitable<std::tuple<dlq_status, std::vector<dead_letter>>> dead_letter_store::find(
    const uuid& id, const std::optional<std::string>& queue,
    const std::optional<std::string>& subscription, store::clock::time_point deadline) {
  std::vector<dead_letter> out;
  store::pg_statement s{.sql = find_sql};
  s.params.add(id);
  add_optional_text(s.params, queue);
  add_optional_text(s.params, subscription);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::make_tuple(status_of(r), std::move(out));
  for (const auto& row : r.rows) {
    auto d = dead_letter_of(row, true, nullptr);
    if (!d)
      co_return std::make_tuple(bad_row(), std::vector<dead_letter>{});
    out.push_back(std::move(*d));
  }
  co_return std::make_tuple(dlq_status{}, std::move(out));
}

asio::awaitable<std::tuple<dlq_status, bool>> dead_letter_store::remove(
    const uuid& id, const std::string& queue, const std::string& subscription,
    store::clock::time_point deadline) {
  store::pg_statement s{.sql = remove_sql, .name = "sluice_dead_letter_remove"};
  s.params.add(id);
  s.params.add_text_bytes(queue);
  s.params.add_text_bytes(subscription);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  co_return std::make_tuple(status_of(r), !r.ec && r.affected_rows > 0);
}

asio::awaitable<std::tuple<dlq_status, bool>> dead_letter_store::redrive_one(
    const uuid& id, const std::string& queue, const std::string& subscription,
    store::clock::time_point deadline) {
  store::pg_statement s{.sql = redrive_sql, .name = "sluice_dead_letter_redrive"};
  s.params.add(id);
  s.params.add_text_bytes(queue);
  s.params.add_text_bytes(subscription);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  co_return std::make_tuple(status_of(r), !r.ec && r.affected_rows > 0);
}

asio::awaitable<std::tuple<dlq_status, std::vector<std::pair<std::string, std::int64_t>>>>
dead_letter_store::count_by_queue(store::clock::time_point deadline) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  const store::pg_statement s{.sql = count_sql};
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::make_tuple(status_of(r), std::move(out));
  for (const auto& row : r.rows) {
    const auto n = row.size() == 2 ? to_int64(row[1]) : std::nullopt;
    if (!row[0] || !n)
      co_return std::make_tuple(bad_row(), std::vector<std::pair<std::string, std::int64_t>>{});
    out.emplace_back(*row[0], *n);
  }
  co_return std::make_tuple(dlq_status{}, std::move(out));
}

}  // namespace sluice::delivery
