#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "sluice/http/message.hpp"

namespace sluice::query {

// How far `page=` may reach: (page - 1) × limit rows skipped with OFFSET at most. PostgreSQL
// reads every skipped row (index entry and heap tuple), so the bound keeps a page request as
// cheap as a few index pages; deeper pages are what `cursor=` is for.
inline constexpr std::size_t max_offset_rows = 10'000;

// `total` is counted exactly up to this many rows (a count over a LIMIT'ed subquery: at most
// this many index entries read); beyond it, it is the planner's estimate and the answer says
// "totalIsEstimate":true.
inline constexpr std::uint64_t exact_total_bound = 1'000;

enum class sort_order { asc, desc };

struct page_limits {
  std::size_t default_limit = 100;
  std::size_t max_limit = 1000;
};

// The common paging parameters: limit=, page=, sort=, cursor= (kept as text: decoding it needs
// the filters' fingerprint and the key).
struct paging {
  std::size_t limit = 0;
  std::size_t page = 1;
  bool page_given = false;
  sort_order sort = sort_order::asc;
  std::optional<std::string> cursor;
};

// GET /api/v1/queues/{queue}/messages: the filters besides the queue.
struct message_filter {
  std::optional<std::string> partition;
  std::optional<std::int64_t> start_us;  // inclusive, on eventTime
  std::optional<std::int64_t> end_us;    // exclusive
};

// Every filter and the sort, times in µs: a cursor works with the same filters spelt otherwise
// (2026-01-01T00:00:00Z or 2026-01-01T01:00:00+01:00), and with no other.
std::string fingerprint(std::string_view queue, const message_filter& f, sort_order sort);
std::string fingerprint(std::string_view queue, sort_order sort);  // the partitions listing

// A bad parameter: the 400 to answer; its message starts with the parameter's name.
struct bad_parameter {
  http::response answer;
};

std::variant<paging, bad_parameter> read_paging(const http::request& req, const page_limits& l);
std::variant<message_filter, bad_parameter> read_message_filter(const http::request& req);

// A time parameter: RFC 3339 (any offset, fractions to the µs), or Unix milliseconds as the
// dead-letter API takes them. Unix µs, or nullopt.
std::optional<std::int64_t> parse_time_us(std::string_view text);

// The API's time format: UTC, "Z", three fraction digits, six when the time has µs (years 0 to
// 9999, what PostgreSQL's timestamps of sluice hold).
std::string format_time_us(std::int64_t unix_us);
void append_time_us(std::string& out, std::int64_t unix_us);

}  // namespace sluice::query
