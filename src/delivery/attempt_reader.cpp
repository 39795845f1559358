#include "sluice/delivery/attempt_reader.hpp"

#include <cstdlib>

#include "sluice/core/utf8.hpp"
#include "sluice/delivery/dlq_values.hpp"
#include "sluice/store/pg_binary.hpp"

namespace sluice::delivery {
namespace asio = boost::asio;
using namespace dlq_values;

namespace {

constexpr std::string_view list_sql = R"sql(
SELECT (extract(epoch FROM attempted_at) * 1000000)::int8, queue, subscription, attempt, outcome,
       status, latency_ms, error
  FROM sluice_delivery_attempts
 WHERE message_id = $1
   AND ($2::timestamptz IS NULL
        OR (attempted_at, queue, subscription, attempt, outcome) > ($2, $3::text, $4::text,
                                                                  $5::int4, $6::text))
 ORDER BY attempted_at, queue, subscription, attempt, outcome
 LIMIT $7::int8)sql";

// Year 9999 in Unix microseconds: beyond anything attempted_at holds.
constexpr std::int64_t max_cursor_us = 253'402'300'799'000'000;

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out += static_cast<char>((v >> shift) & 0xff);
}

std::uint32_t get_u32(std::string_view b) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(b[i]);
  return v;
}

}  // namespace

std::string attempt_key::encode() const {
  std::string out;
  store::pg_binary::put_int64(out, attempted_us);
  put_u32(out, static_cast<std::uint32_t>(attempt));
  put_u32(out, static_cast<std::uint32_t>(queue.size()));
  out += queue;
  put_u32(out, static_cast<std::uint32_t>(subscription.size()));
  out += subscription;
  out += outcome;
  return out;
}

std::optional<attempt_key> attempt_key::decode(std::string_view p) {
  if (p.size() < 16)
    return std::nullopt;
  attempt_key k;
  k.attempted_us = static_cast<std::int64_t>((static_cast<std::uint64_t>(get_u32(p)) << 32) |
                                             get_u32(p.substr(4)));
  // Crafted positions pass the checksum too: a time PostgreSQL cannot hold is refused here.
  if (k.attempted_us < 0 || k.attempted_us > max_cursor_us)
    return std::nullopt;
  k.attempt = static_cast<std::int32_t>(get_u32(p.substr(8)));
  const std::uint32_t queue_len = get_u32(p.substr(12));
  if (queue_len > p.size() - 16)
    return std::nullopt;
  k.queue = std::string(p.substr(16, queue_len));
  std::string_view rest = p.substr(16 + queue_len);
  if (rest.size() < 4)
    return std::nullopt;
  const std::uint32_t sub_len = get_u32(rest);
  if (sub_len > rest.size() - 4)
    return std::nullopt;
  k.subscription = std::string(rest.substr(4, sub_len));
  k.outcome = std::string(rest.substr(4 + sub_len));
  if (!is_valid_utf8(k.queue) || !is_valid_utf8(k.subscription) || !is_valid_utf8(k.outcome))
    return std::nullopt;
  return k;
}

attempt_reader::attempt_reader(store::pg_pool& pool) : pool_(pool) {}

asio::awaitable<attempt_page> attempt_reader::list(const uuid& message_id,
                                                   const std::optional<attempt_key>& after,
                                                   std::size_t limit,
                                                   store::clock::time_point deadline) {
  attempt_page out;
  store::pg_statement s{.sql = list_sql, .name = "sluice_delivery_attempts_list"};
  s.params.add(message_id);
  if (after) {
    add_time_us(s.params, after->attempted_us);
    s.params.add_text_bytes(after->queue);
    s.params.add_text_bytes(after->subscription);
    s.params.add(after->attempt);
    s.params.add_text_bytes(after->outcome);
  } else {
    s.params.add_null(store::pg_type::timestamptz);
    s.params.add_null(store::pg_type::text);
    s.params.add_null(store::pg_type::text);
    s.params.add_null(store::pg_type::int4);
    s.params.add_null(store::pg_type::text);
  }
  s.params.add(static_cast<std::int64_t>(limit + 1));
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec) {
    out.status = status_of(r);
    co_return out;
  }
  std::int64_t last_us = 0;
  for (const auto& row : r.rows) {
    if (out.items.size() == limit) {
      const attempt_record& last = out.items.back();
      out.next = attempt_key{last_us, last.queue, last.subscription,
                             static_cast<std::int32_t>(last.attempt), last.outcome};
      break;
    }
    const auto us = row.size() == 8 ? to_int64(row[0]) : std::nullopt;
    const auto attempt = row.size() == 8 ? to_int64(row[3]) : std::nullopt;
    if (!us || !row[1] || !row[2] || !attempt || !row[4] || !row[6]) {
      out.status.ec = store::errc::query_failed;
      out.status.message = "unexpected attempt row";
      out.items.clear();
      co_return out;
    }
    attempt_record a;
    a.message_id = message_id;
    a.attempted_ms = *us / 1000;
    a.queue = *row[1];
    a.subscription = *row[2];
    a.attempt = static_cast<std::uint32_t>(*attempt);
    a.outcome = *row[4];
    if (const auto st = to_int64(row[5]))
      a.status = static_cast<int>(*st);
    a.latency_ms = std::strtod(row[6]->c_str(), nullptr);
    a.error = row[7].value_or("");
    last_us = *us;
    out.items.push_back(std::move(a));
  }
  co_return out;
}

}  // namespace sluice::delivery
