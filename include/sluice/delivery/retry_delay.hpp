#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "sluice/delivery/subscription.hpp"

namespace sluice::delivery {

// The upper bound of the wait after failed attempt `failed_attempt` (1-based):
// min(max_backoff, initial_backoff * 2^(failed_attempt - 1)), without overflow for any attempt.
std::chrono::milliseconds backoff_bound(const retry_policy& policy, std::uint32_t failed_attempt);

// Full jitter: uniform in [0, bound], from a 64-bit random number (the caller's generator, so
// tests can drive it).
std::chrono::milliseconds full_jitter(std::chrono::milliseconds bound, std::uint64_t random);

// The wait before the next attempt: the jittered backoff, but never less than a Retry-After the
// target sent, which is itself capped at retry_after_max (DELIVERY_RETRY_AFTER_MAX_MS).
std::chrono::milliseconds retry_delay(const retry_policy& policy, std::uint32_t failed_attempt,
                                      std::optional<std::chrono::milliseconds> retry_after,
                                      std::chrono::milliseconds retry_after_max,
                                      std::uint64_t random);

// A Retry-After header value (RFC 9110 10.2.3): delta-seconds, or an HTTP-date (IMF-fixdate,
// and the obsolete RFC 850 and asctime forms) read against `now` (a date in the past is 0).
// nullopt for anything else (then it is ignored).
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

}  // namespace sluice::delivery
