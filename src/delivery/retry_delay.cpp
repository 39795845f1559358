#include "sluice/delivery/retry_delay.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace sluice::delivery {
namespace {

using std::chrono::milliseconds;

constexpr std::int64_t max_ms = std::numeric_limits<milliseconds::rep>::max();

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A tiny cursor over the value: every HTTP-date form is fixed text, fixed-width numbers and
// names, so reading it piece by piece is clearer than a format string.
struct reader {
  std::string_view rest;

  bool literal(std::string_view text) {
    if (rest.substr(0, text.size()) != text)
      return false;
    rest.remove_prefix(text.size());
    return true;
  }
  // Exactly `width` digits.
  bool digits(int width, int& out) {
    if (rest.size() < static_cast<std::size_t>(width))
      return false;
    out = 0;
    for (int i = 0; i < width; ++i) {
      if (!is_digit(rest[i]))
        return false;
      out = out * 10 + (rest[i] - '0');
    }
    rest.remove_prefix(width);
    return true;
  }
  // One of `names`; the index in out.
  template <std::size_t N>
  bool name(const std::array<std::string_view, N>& names, int& out) {
    for (std::size_t i = 0; i < N; ++i) {
      if (literal(names[i])) {
        out = static_cast<int>(i);
        return true;
      }
    }
    return false;
  }
  bool done() const { return rest.empty(); }
};

constexpr std::array<std::string_view, 7> short_days = {"Mon", "Tue", "Wed", "Thu",
                                                        "Fri", "Sat", "Sun"};
// Longest first is unnecessary: no long name is a prefix of another.
constexpr std::array<std::string_view, 7> long_days = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct civil_time {
  int year = 0;
  int month = 0;  // 0-based
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
};

bool read_clock(reader& r, civil_time& t) {
  return r.digits(2, t.hour) && r.literal(":") && r.digits(2, t.minute) && r.literal(":") &&
         r.digits(2, t.second);
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
bool read_imf_fixdate(std::string_view text, civil_time& t) {
  reader r{text};
  int ignored = 0;
  return r.name(short_days, ignored) && r.literal(", ") && r.digits(2, t.day) && r.literal(" ") &&
         r.name(months, t.month) && r.literal(" ") && r.digits(4, t.year) && r.literal(" ") &&
         read_clock(r, t) && r.literal(" GMT") && r.done();
}

// RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; the century is placed as RFC 9110 5.6.7 asks:
// a year that would be more than 50 years in the future is in the previous century.
bool read_rfc850(std::string_view text, int this_year, civil_time& t) {
  reader r{text};
  int ignored = 0;
  int yy = 0;
  if (!(r.name(long_days, ignored) && r.literal(", ") && r.digits(2, t.day) && r.literal("-") &&
        r.name(months, t.month) && r.literal("-") && r.digits(2, yy) && r.literal(" ") &&
        read_clock(r, t) && r.literal(" GMT") && r.done()))
    return false;
  t.year = this_year - this_year % 100 + yy;
  if (t.year > this_year + 50)
    t.year -= 100;
  return true;
}

// asctime: "Sun Nov  6 08:49:37 1994" (the day is padded with a space).
bool read_asctime(std::string_view text, civil_time& t) {
  reader r{text};
  int ignored = 0;
  if (!(r.name(short_days, ignored) && r.literal(" ") && r.name(months, t.month) && r.literal(" ")))
    return false;
  if (!(r.literal(" ") ? r.digits(1, t.day) : r.digits(2, t.day)))
    return false;
  return r.literal(" ") && read_clock(r, t) && r.literal(" ") && r.digits(4, t.year) && r.done();
}

std::optional<std::chrono::system_clock::time_point> to_time_point(const civil_time& t) {
  using namespace std::chrono;
  const year_month_day date{year{t.year}, month{static_cast<unsigned>(t.month + 1)},
                            day{static_cast<unsigned>(t.day)}};
  // A leap second (60) is allowed by the grammar; it reads as the next second.
  if (!date.ok() || t.hour > 23 || t.minute > 59 || t.second > 60)
    return std::nullopt;
  return time_point_cast<system_clock::duration>(sys_days{date} + hours{t.hour} +
                                                 minutes{t.minute} + seconds{t.second});
}

std::optional<milliseconds> parse_delta_seconds(std::string_view text) {
  std::int64_t seconds = 0;
  for (char c : text) {
    if (!is_digit(c))
      return std::nullopt;
    // Saturate: a target asking for centuries is capped by the caller anyway.
    if (seconds > (max_ms / 1000 - 9) / 10)
      return milliseconds::max();
    seconds = seconds * 10 + (c - '0');
  }
  return milliseconds(seconds * 1000);
}

// The high 64 bits of a * b, in 32-bit halves (portable; no __int128 under -Wpedantic).
std::uint64_t multiply_high(std::uint64_t a, std::uint64_t b) {
  const std::uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
  const std::uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
  const std::uint64_t lo_lo = a_lo * b_lo;
  const std::uint64_t hi_lo = a_hi * b_lo;
  const std::uint64_t lo_hi = a_lo * b_hi;
  const std::uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi;
  return a_hi * b_hi + (hi_lo >> 32) + (cross >> 32);
}

}  // namespace

milliseconds backoff_bound(const retry_policy& policy, std::uint32_t failed_attempt) {
  const milliseconds cap = std::max(policy.max_backoff, milliseconds(0));
  const milliseconds initial = std::clamp(policy.initial_backoff, milliseconds(0), cap);
  const std::uint32_t doublings = failed_attempt > 0 ? failed_attempt - 1 : 0;
  // initial * 2^doublings reaches the cap before it can overflow: compare by shifting the cap
  // down instead of the product up.
  if (initial.count() == 0)
    return initial;
  if (doublings >= 63 || initial.count() > (cap.count() >> doublings))
    return cap;
  return milliseconds(initial.count() << doublings);
}

milliseconds full_jitter(milliseconds bound, std::uint64_t random) {
  if (bound.count() <= 0)
    return milliseconds(0);
  // Scale the 64-bit number onto [0, bound] by the high half of a 128-bit product (no modulo
  // bias worth the name; bound + 1 fits in 64 unsigned bits even for bound = max).
  const std::uint64_t span = static_cast<std::uint64_t>(bound.count()) + 1;
  return milliseconds(static_cast<std::int64_t>(multiply_high(span, random)));
}

milliseconds retry_delay(const retry_policy& policy, std::uint32_t failed_attempt,
                         std::optional<milliseconds> retry_after, milliseconds retry_after_max,
                         std::uint64_t random) {
  const milliseconds jittered = full_jitter(backoff_bound(policy, failed_attempt), random);
  if (!retry_after)
    return jittered;
  const milliseconds asked =
      std::clamp(*retry_after, milliseconds(0), std::max(retry_after_max, milliseconds(0)));
  return std::max(jittered, asked);
}

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  const std::string_view text = trim(value);
  if (text.empty())
    return std::nullopt;
  if (is_digit(text.front()))
    return parse_delta_seconds(text);

  const int this_year = static_cast<int>(year_month_day{floor<days>(now)}.year());
  civil_time t;
  if (!read_imf_fixdate(text, t) && !read_rfc850(text, this_year, t) && !read_asctime(text, t))
    return std::nullopt;
  const auto when = to_time_point(t);
  if (!when)
    return std::nullopt;
  if (*when <= now)
    return milliseconds(0);
  return ceil<milliseconds>(*when - now);
}

}  // namespace sluice::delivery
