#include "sluice/query/query_params.hpp"

#include <charconv>
#include <chrono>

#include "sluice/core/rfc3339.hpp"
#include "sluice/core/utf8.hpp"
#include "sluice/http/list_page.hpp"

namespace sluice::query {
namespace {

constexpr std::size_t max_partition_bytes = 1024;

bad_parameter bad(std::string_view code, std::string message) {
  return {http::error_response(400, code, message)};
}

std::optional<std::size_t> parse_count(std::string_view text) {
  std::size_t n = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (text.empty() || ec != std::errc{} || ptr != end)
    return std::nullopt;
  return n;
}

}  // namespace

std::string fingerprint(std::string_view queue, const message_filter& f, sort_order sort) {
  std::string out = "messages&queue=";
  out += queue;
  // A partition name may hold any byte but NUL-free UTF-8: its length keeps "a&x=1" from
  // reading as two fields.
  out += "&partition=";
  if (f.partition)
    out += std::to_string(f.partition->size()) + ":" + *f.partition;
  out += "&start=";
  if (f.start_us)
    out += std::to_string(*f.start_us);
  out += "&end=";
  if (f.end_us)
    out += std::to_string(*f.end_us);
  out += sort == sort_order::asc ? "&sort=asc" : "&sort=desc";
  return out;
}

std::string fingerprint(std::string_view queue, sort_order sort) {
  std::string out = "partitions&queue=";
  out += queue;
  out += sort == sort_order::asc ? "&sort=asc" : "&sort=desc";
  return out;
}

std::variant<paging, bad_parameter> read_paging(const http::request& req, const page_limits& l) {
  paging p;
  const auto limit_text = req.query_param("limit");
  auto limit =
      http::parse_limit(limit_text ? std::optional<std::string_view>(*limit_text) : std::nullopt,
                        l.default_limit, l.max_limit);
  if (auto* why = std::get_if<std::string>(&limit))
    return bad("invalid_limit", *why);
  p.limit = std::get<std::size_t>(limit);

  if (const auto sort = req.query_param("sort"); sort && !sort->empty()) {
    if (*sort == "desc")
      p.sort = sort_order::desc;
    else if (*sort != "asc")
      return bad("invalid_parameter", "sort must be asc or desc");
  }

  if (const auto cursor = req.query_param("cursor"); cursor && !cursor->empty())
    p.cursor = *cursor;

  if (const auto page = req.query_param("page"); page && !page->empty()) {
    if (p.cursor)
      return bad("invalid_parameter",
                 "page and cursor exclude each other: a cursor knows its page");
    const auto n = parse_count(*page);
    const std::size_t max_page = max_offset_rows / p.limit + 1;
    if (!n || *n < 1 || *n > max_page) {
      return bad("invalid_parameter",
                 "page must be an integer from 1 to " + std::to_string(max_page) + " (at most " +
                     std::to_string(max_offset_rows) +
                     " rows are skipped with page numbers at this limit; follow \"next\" with "
                     "cursor= to go further)");
    }
    p.page = *n;
    p.page_given = true;
  }
  return p;
}

std::optional<std::int64_t> parse_time_us(std::string_view text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t ms = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc{} || ptr != text.data() + text.size() || ms > 9'000'000'000'000)
      return std::nullopt;
    return ms * 1000;
  }
  const auto tp = parse_rfc3339(text);
  if (!tp)
    return std::nullopt;
  // Floor, not truncation towards zero: the same instant PostgreSQL's µs timestamps hold.
  return std::chrono::floor<std::chrono::microseconds>(tp->time_since_epoch()).count();
}

namespace {

// Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted): no locale,
// no printf; a page formats two times per message.
struct civil {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

void put_digits(std::string& out, std::uint64_t v, int width) {
  char buf[20];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(buf, static_cast<std::size_t>(width));
}

}  // namespace

void append_time_us(std::string& out, std::int64_t unix_us) {
  constexpr std::int64_t us_per_day = 86'400'000'000;
  std::int64_t days = unix_us / us_per_day;
  std::int64_t rest = unix_us % us_per_day;
  if (rest < 0) {
    rest += us_per_day;
    --days;
  }
  const civil c = civil_from_days(days);
  const auto sec_of_day = static_cast<std::uint64_t>(rest / 1'000'000);
  const auto us = static_cast<std::uint64_t>(rest % 1'000'000);
  put_digits(out, static_cast<std::uint64_t>(c.year), 4);
  out += '-';
  put_digits(out, c.month, 2);
  out += '-';
  put_digits(out, c.day, 2);
  out += 'T';
  put_digits(out, sec_of_day / 3600, 2);
  out += ':';
  put_digits(out, sec_of_day / 60 % 60, 2);
  out += ':';
  put_digits(out, sec_of_day % 60, 2);
  out += '.';
  if (us % 1000 == 0)
    put_digits(out, us / 1000, 3);
  else
    put_digits(out, us, 6);
  out += 'Z';
}

std::string format_time_us(std::int64_t unix_us) {
  std::string out;
  out.reserve(27);
  append_time_us(out, unix_us);
  return out;
}

std::variant<message_filter, bad_parameter> read_message_filter(const http::request& req) {
  message_filter f;
  if (auto partition = req.query_param("partition"); partition && !partition->empty()) {
    if (partition->size() > max_partition_bytes || !is_valid_utf8(*partition) ||
        partition->find('\0') != std::string::npos) {
      return bad("invalid_filter", "partition must be 1 to " + std::to_string(max_partition_bytes) +
                                       " bytes of UTF-8");
    }
    f.partition = std::move(*partition);
  }
  for (const std::string_view field : {"start_time", "end_time"}) {
    const auto text = req.query_param(field);
    if (!text || text->empty())
      continue;
    const auto us = parse_time_us(*text);
    if (!us) {
      return bad("invalid_time",
                 std::string(field) +
                     " must be an RFC 3339 time (e.g. 2026-12-01T00:00:00Z) or Unix milliseconds");
    }
    (field == "start_time" ? f.start_us : f.end_us) = us;
  }
  if (f.start_us && f.end_us && *f.start_us > *f.end_us)
    return bad("invalid_time", "start_time must not be after end_time");
  return f;
}

}  // namespace sluice::query
