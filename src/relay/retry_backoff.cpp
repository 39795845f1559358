#include "sluice/relay/retry_backoff.hpp"

#include <algorithm>

namespace sluice::relay {

retry_backoff::retry_backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(initial), max_(std::max(initial, max)), next_(initial) {}

retry_backoff::failure retry_backoff::on_failure() {
  const failure f{next_, mode_ == mode::ok};
  mode_ = mode::failing;
  next_ = std::min(next_ * 2, max_);
  return f;
}

bool retry_backoff::on_success() {
  const bool recovered = mode_ == mode::failing;
  mode_ = mode::ok;
  next_ = initial_;
  return recovered;
}

}  // namespace sluice::relay
