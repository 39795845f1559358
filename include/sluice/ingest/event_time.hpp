#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::ingest {

// How a row's time_field is written (the ingest's time_format parameter).
enum class time_format {
  rfc3339,   // 2026-12-02T17:00:00.250Z
  epoch_s,   // seconds since the Unix epoch, fractions allowed: 1764694800.25
  epoch_ms,  // milliseconds since the Unix epoch, fractions allowed: 1764694800250
};
std::optional<time_format> parse_time_format(std::string_view name);

// The event time in Unix microseconds (fractions below a microsecond are cut off), or none
// when `text` is not a time in `format`. For the epoch formats `text` is a plain decimal
// number (a JSON number without exponent, or a string holding one); times before 1970 and
// after what RFC 3339 parsing holds (2261) are refused.
std::optional<std::int64_t> parse_event_time_us(time_format format, std::string_view text);

}  // namespace sluice::ingest
