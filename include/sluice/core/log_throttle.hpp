#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

namespace sluice {

// Lets a log line that may repeat once per request through at most `burst` times per
// `interval`, and counts the rest: logging is synchronous, so a failure storm (a full disk,
// 10,000 failing requests a second) must not turn into 10,000 writes to stderr a second on the
// event loop. The next line let through says how many were suppressed before it.
class log_throttle {
 public:
  using clock = std::chrono::steady_clock;

  explicit log_throttle(std::chrono::milliseconds interval = std::chrono::seconds(1),
                        std::size_t burst = 5)
      : interval_(interval), burst_(burst) {}

  // Nothing: suppress this line. Otherwise log it, with the count of lines suppressed since
  // the last one let through.
  std::optional<std::size_t> admit(clock::time_point now = clock::now()) {
    if (now - window_start_ >= interval_) {
      window_start_ = now;
      in_window_ = 0;
    }
    if (in_window_ >= burst_) {
      ++suppressed_;
      return std::nullopt;
    }
    ++in_window_;
    const std::size_t before = suppressed_;
    suppressed_ = 0;
    return before;
  }

 private:
  std::chrono::milliseconds interval_;
  std::size_t burst_;
  clock::time_point window_start_{};
  std::size_t in_window_ = 0;
  std::size_t suppressed_ = 0;
};

}  // namespace sluice
