#include "sluice/ingest/event_time.hpp"

#include <chrono>

#include "sluice/core/rfc3339.hpp"

namespace sluice::ingest {
namespace {

// 2262-01-01T00:00:00Z: a nanosecond system_clock ends in 2262, and RFC 3339 parsing at 2261.
constexpr std::int64_t max_us = 9'214'646'400'000'000;

std::optional<std::int64_t> epoch_us(std::string_view t, std::int64_t unit_us) {
  std::size_t i = 0;
  std::int64_t whole = 0;
  if (t.empty())
    return std::nullopt;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
    whole = whole * 10 + (t[i] - '0');
    if (whole > max_us)
      return std::nullopt;
    ++i;
  }
  if (i == 0)
    return std::nullopt;
  std::int64_t fraction_us = 0;
  if (i < t.size() && t[i] == '.') {
    ++i;
    const std::size_t first = i;
    std::int64_t scale = unit_us;  // the worth of the next fraction digit, times 10
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      scale /= 10;
      fraction_us += (t[i] - '0') * scale;
      ++i;
    }
    if (i == first)
      return std::nullopt;
  }
  if (i != t.size() || whole > max_us / unit_us)
    return std::nullopt;
  const std::int64_t us = whole * unit_us + fraction_us;
  if (us >= max_us)
    return std::nullopt;
  return us;
}

}  // namespace

std::optional<time_format> parse_time_format(std::string_view name) {
  if (name == "rfc3339")
    return time_format::rfc3339;
  if (name == "epoch_s")
    return time_format::epoch_s;
  if (name == "epoch_ms")
    return time_format::epoch_ms;
  return std::nullopt;
}

std::optional<std::int64_t> parse_event_time_us(time_format format, std::string_view text) {
  switch (format) {
    case time_format::epoch_s:
      return epoch_us(text, 1'000'000);
    case time_format::epoch_ms:
      return epoch_us(text, 1'000);
    case time_format::rfc3339:
      break;
  }
  const auto tp = parse_rfc3339(text);
  if (!tp)
    return std::nullopt;
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(tp->time_since_epoch()).count();
  if (us < 0 || us >= max_us)
    return std::nullopt;
  return us;
}

}  // namespace sluice::ingest
