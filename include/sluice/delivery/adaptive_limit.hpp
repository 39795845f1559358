#pragma once

#include <chrono>
#include <cstdint>

namespace sluice::delivery {

// AIMD concurrency of one subscription, between 1 and `max` (the subscription's concurrency):
// every success adds 1/limit (so a full window of successes adds one), an overload response
// (429/503/504/timeout) halves it, at most once per `cooldown` (the responses of one window of
// requests already in flight say the same thing and must not halve it again and again).
class adaptive_limit {
 public:
  using clock = std::chrono::steady_clock;

  explicit adaptive_limit(std::uint32_t max,
                          std::chrono::milliseconds cooldown = std::chrono::milliseconds(1'000));

  std::uint32_t limit() const;
  std::uint32_t max() const { return max_; }
  void on_success();
  void on_overload(clock::time_point now);
  // The subscription changed; the limit is clamped into [1, max].
  void set_max(std::uint32_t max);

 private:
  std::uint32_t max_;
  double limit_;
  std::chrono::milliseconds cooldown_;
  clock::time_point last_decrease_{};
  bool decreased_ = false;
};

// A token bucket: `rate` tokens per second, at most `burst` saved up. reserve() takes the next
// token and says how long the caller must wait before using it (0: now), so callers queue up in
// order without polling. rate <= 0 means unlimited.
class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  rate_limiter(double rate_per_sec, double burst);
  clock::duration reserve(clock::time_point now);
  // The last reservation will not be used (its caller gave up waiting): its token goes back.
  void give_back();
  void set_rate(double rate_per_sec, double burst);

 private:
  double rate_;
  double burst_;
  double tokens_;
  clock::time_point updated_{};
  bool started_ = false;
};

}  // namespace sluice::delivery
