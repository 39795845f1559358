#pragma once

#include <chrono>
#include <cstdint>

namespace sluice::delivery {

enum class breaker_state { closed, open, half_open };
const char* to_string(breaker_state s);

struct breaker_options {
  std::uint32_t failure_threshold = 20;           // consecutive failures that open it
  std::chrono::milliseconds open_initial{5'000};  // first wait before a probe
  std::chrono::milliseconds open_max{60'000};     // the wait doubles per failed probe up to this
};

// One target's (host:port) circuit breaker, a state machine driven by the caller's clock:
//   closed    --failure_threshold consecutive failures-->  open (wait open_initial)
//   open      --the wait is over, admit()-->               half_open (exactly one probe admitted)
//   half_open --the probe succeeded-->                     closed (wait reset)
//   half_open --the probe failed-->                        open (wait doubled, capped)
//   half_open --the probe ended without outcome-->         open again at once: the next admit()
//                                                          may probe (release_probe)
// A success in closed resets the failure run. In half_open every outcome is taken as the probe's
// (only one request is admitted there). Outcomes of requests admitted before the breaker
// opened still count (a success closes nothing while open; a failure does not extend it).
class circuit_breaker {
 public:
  using clock = std::chrono::steady_clock;
  enum class admission { allowed, probe, rejected };

  explicit circuit_breaker(breaker_options options);

  admission admit(clock::time_point now);
  void on_success(clock::time_point now);
  void on_failure(clock::time_point now);
  void release_probe();

  breaker_state state() const { return state_; }
  // While open: when the next probe may go (admit() before it is rejected).
  clock::time_point probe_at() const { return probe_at_; }
  // Transitions taken since creation (for logs and metrics).
  std::uint64_t transitions() const { return transitions_; }

 private:
  // The one place the state changes (and transitions_ counts). `probe_at` is read only when
  // entering open: when the next probe may go.
  void enter(breaker_state s, clock::time_point probe_at);

  breaker_options options_;
  breaker_state state_ = breaker_state::closed;
  std::uint32_t failures_ = 0;
  std::chrono::milliseconds wait_;
  clock::time_point probe_at_{};
  bool probe_out_ = false;
  std::uint64_t transitions_ = 0;
};

}  // namespace sluice::delivery
