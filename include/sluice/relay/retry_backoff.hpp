#pragma once

#include <chrono>

namespace sluice::relay {

// The pause between attempts of something that keeps failing (a statement PostgreSQL cannot
// run now): doubles from `initial` up to `max`, back to `initial` after a success. Two modes,
// so the owner logs the change (first failure, recovery) once rather than every attempt.
class retry_backoff {
 public:
  enum class mode { ok, failing };

  retry_backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  struct failure {
    std::chrono::milliseconds pause;
    bool first;  // ok -> failing: the owner logs it
  };
  failure on_failure();
  // True on failing -> ok: the owner logs the recovery.
  bool on_success();

  mode current() const { return mode_; }
  std::chrono::milliseconds next_pause() const { return next_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds next_;
  mode mode_ = mode::ok;
};

}  // namespace sluice::relay
