#include "sluice/delivery/circuit_breaker.hpp"

#include <algorithm>

namespace sluice::delivery {

const char* to_string(breaker_state s) {
  switch (s) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
  }
  return "unknown";
}

circuit_breaker::circuit_breaker(breaker_options options)
    : options_(options), wait_(std::max(options.open_initial, std::chrono::milliseconds(0))) {
  options_.failure_threshold = std::max<std::uint32_t>(options_.failure_threshold, 1);
  options_.open_max = std::max(options_.open_max, wait_);
}

circuit_breaker::admission circuit_breaker::admit(clock::time_point now) {
  switch (state_) {
    case breaker_state::closed:
      return admission::allowed;
    case breaker_state::open:
      if (now < probe_at_)
        return admission::rejected;
      enter(breaker_state::half_open, probe_at_);
      return admission::probe;
    case breaker_state::half_open:
      // The probe is out (release_probe() leaves half_open): everyone else waits for its outcome.
      return admission::rejected;
  }
  return admission::rejected;
}

void circuit_breaker::on_success(clock::time_point) {
  switch (state_) {
    case breaker_state::closed:
      failures_ = 0;
      return;
    case breaker_state::open:
      // A request admitted before the breaker opened: one success among the failures that
      // opened it proves nothing; the probe decides.
      return;
    case breaker_state::half_open:
      enter(breaker_state::closed, {});
      return;
  }
}

void circuit_breaker::on_failure(clock::time_point now) {
  switch (state_) {
    case breaker_state::closed:
      if (++failures_ >= options_.failure_threshold)
        enter(breaker_state::open, now + wait_);
      return;
    case breaker_state::open:
      // Late outcomes of requests admitted while closed do not push the probe further away.
      return;
    case breaker_state::half_open:
      wait_ = std::min(wait_ * 2, options_.open_max);
      enter(breaker_state::open, now + wait_);
      return;
  }
}

void circuit_breaker::release_probe() {
  // The probe never got an answer either way (cancelled, deferred): the target is no better
  // known than before, so the next admit() may probe at once — probe_at_ is already past.
  if (state_ == breaker_state::half_open)
    enter(breaker_state::open, probe_at_);
}

void circuit_breaker::enter(breaker_state s, clock::time_point probe_at) {
  switch (s) {
    case breaker_state::closed:
      failures_ = 0;
      wait_ = std::max(options_.open_initial, std::chrono::milliseconds(0));
      probe_out_ = false;
      break;
    case breaker_state::open:
      probe_at_ = probe_at;
      probe_out_ = false;
      break;
    case breaker_state::half_open:
      probe_out_ = true;
      break;
  }
  state_ = s;
  ++transitions_;
}

}  // namespace sluice::delivery
