#pragma once

#include <chrono>
#include <cstdint>

namespace sluice::relay {

// Logs a recurring condition at most once per period, with the count of those not logged: a
// broker or database that stays away must not turn every message into a log line.
struct log_limiter {
  using clock = std::chrono::steady_clock;

  clock::time_point next{};
  std::uint64_t suppressed = 0;

  bool allow(clock::time_point now, std::chrono::seconds period = std::chrono::seconds(10));
};

}  // namespace sluice::relay
