#include "sluice/relay/log_limiter.hpp"

namespace sluice::relay {

bool log_limiter::allow(clock::time_point now, std::chrono::seconds period) {
  if (now < next) {
    ++suppressed;
    return false;
  }
  next = now + period;
  return true;
}

}  // namespace sluice::relay
