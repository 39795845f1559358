#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

// RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm). Years are limited to
// 1970..2261, what a nanosecond system_clock holds.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

// UTC with "Z", the fraction only as long as it needs to be, so that parse_rfc3339 gives the
// same time_point back.
std::string format_rfc3339(std::chrono::system_clock::time_point tp);

// UTC with "Z" and exactly three fraction digits (the API's timestamps), from Unix ms.
std::string format_rfc3339_ms(std::int64_t unix_ms);

}  // namespace sluice
