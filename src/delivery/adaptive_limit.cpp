#include "sluice/delivery/adaptive_limit.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::delivery {

adaptive_limit::adaptive_limit(std::uint32_t max, std::chrono::milliseconds cooldown)
    : max_(std::max<std::uint32_t>(max, 1)), limit_(max_), cooldown_(cooldown) {}

std::uint32_t adaptive_limit::limit() const {
  // n additions of 1/n are not exactly 1 in binary: a window of successes must still count.
  const double whole = std::floor(limit_ + 1e-9);
  return std::clamp(static_cast<std::uint32_t>(whole), std::uint32_t{1}, max_);
}

void adaptive_limit::on_success() {
  limit_ = std::min(limit_ + 1.0 / static_cast<double>(limit()), static_cast<double>(max_));
}

void adaptive_limit::on_overload(clock::time_point now) {
  if (decreased_ && now - last_decrease_ < cooldown_)
    return;
  limit_ = std::max(limit_ / 2, 1.0);
  last_decrease_ = now;
  decreased_ = true;
}

void adaptive_limit::set_max(std::uint32_t max) {
  max_ = std::max<std::uint32_t>(max, 1);
  limit_ = std::clamp(limit_, 1.0, static_cast<double>(max_));
}

rate_limiter::rate_limiter(double rate_per_sec, double burst)
    : rate_(rate_per_sec), burst_(std::max(burst, 1.0)), tokens_(burst_) {}

rate_limiter::clock::duration rate_limiter::reserve(clock::time_point now) {
  if (!(rate_ > 0))
    return clock::duration::zero();
  if (!started_) {
    started_ = true;
    updated_ = now;
  } else if (now > updated_) {
    const double elapsed = std::chrono::duration<double>(now - updated_).count();
    tokens_ = std::min(tokens_ + elapsed * rate_, burst_);
    updated_ = now;
  }
  // The token is taken even when it is not there yet: the bucket goes into debt, and each later
  // caller's wait includes the debt of those before it, which queues them in order.
  tokens_ -= 1;
  if (tokens_ >= 0)
    return clock::duration::zero();
  const std::chrono::duration<double> wait(-tokens_ / rate_);
  return std::chrono::ceil<clock::duration>(wait);
}

void rate_limiter::give_back() {
  if (rate_ > 0)
    tokens_ = std::min(tokens_ + 1, burst_);
}

void rate_limiter::set_rate(double rate_per_sec, double burst) {
  const bool was_unlimited = !(rate_ > 0);
  rate_ = rate_per_sec;
  burst_ = std::max(burst, 1.0);
  if (was_unlimited) {
    tokens_ = burst_;
    started_ = false;
  } else {
    tokens_ = std::min(tokens_, burst_);
  }
}

}  // namespace sluice::delivery
