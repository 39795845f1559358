#include "sluice/core/rfc3339.hpp"

#include <cstdio>

namespace sluice {
namespace {

using clock = std::chrono::system_clock;

bool digits(std::string_view t, std::size_t at, std::size_t count, int& out) {
  if (at + count > t.size())
    return false;
  int v = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (t[i] < '0' || t[i] > '9')
      return false;
    v = v * 10 + (t[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::optional<clock::time_point> parse_rfc3339(std::string_view t) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!digits(t, 0, 4, y) || t.size() < 20 || t[4] != '-' || !digits(t, 5, 2, mo) || t[7] != '-' ||
      !digits(t, 8, 2, d) || (t[10] != 'T' && t[10] != 't') || !digits(t, 11, 2, h) ||
      t[13] != ':' || !digits(t, 14, 2, mi) || t[16] != ':' || !digits(t, 17, 2, s))
    return std::nullopt;
  if (y < 1970 || y > 2261 || h > 23 || mi > 59 || s > 60)
    return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{y}, std::chrono::month(mo),
                                         std::chrono::day(d)};
  if (!date.ok())
    return std::nullopt;
  std::size_t at = 19;
  std::int64_t nanos = 0;
  if (t[at] == '.') {
    ++at;
    const std::size_t start = at;
    std::int64_t scale = 100'000'000;
    while (at < t.size() && t[at] >= '0' && t[at] <= '9') {
      nanos += (t[at] - '0') * scale;  // digits past nanoseconds add 0
      scale /= 10;
      ++at;
    }
    if (at == start)
      return std::nullopt;
  }
  std::chrono::minutes offset{0};
  if (at < t.size() && (t[at] == 'Z' || t[at] == 'z')) {
    ++at;
  } else if (at < t.size() && (t[at] == '+' || t[at] == '-')) {
    int oh = 0, om = 0;
    if (!digits(t, at + 1, 2, oh) || at + 3 >= t.size() || t[at + 3] != ':' ||
        !digits(t, at + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = std::chrono::hours(oh) + std::chrono::minutes(om);
    if (t[at] == '-')
      offset = -offset;
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != t.size())
    return std::nullopt;
  const auto local = std::chrono::sys_days(date).time_since_epoch() + std::chrono::hours(h) +
                     std::chrono::minutes(mi) + std::chrono::seconds(s) - offset;
  return clock::time_point(std::chrono::duration_cast<clock::duration>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(local) +
      std::chrono::nanoseconds(nanos)));
}

std::string format_rfc3339(clock::time_point tp) {
  const auto since = std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch());
  const auto day = std::chrono::floor<std::chrono::days>(since);
  const std::chrono::year_month_day date{std::chrono::sys_days(day)};
  auto rest = since - day;
  const auto h = std::chrono::duration_cast<std::chrono::hours>(rest);
  rest -= h;
  const auto mi = std::chrono::duration_cast<std::chrono::minutes>(rest);
  rest -= mi;
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(rest);
  rest -= s;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(h.count()), static_cast<int>(mi.count()),
                static_cast<int>(s.count()));
  std::string out = buf;
  if (const auto ns = rest.count(); ns != 0) {
    std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(ns));
    std::string frac = buf;
    while (frac.back() == '0')
      frac.pop_back();
    out += frac;
  }
  out += 'Z';
  return out;
}

std::string format_rfc3339_ms(std::int64_t unix_ms) {
  const auto tp = clock::time_point(std::chrono::milliseconds(unix_ms));
  std::string out = format_rfc3339(std::chrono::floor<std::chrono::seconds>(tp));
  out.pop_back();  // 'Z'
  char frac[8];
  const auto ms = ((unix_ms % 1000) + 1000) % 1000;
  std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
  return out + frac + "Z";
}

}  // namespace sluice
