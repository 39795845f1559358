#pragma once

#include <chrono>
#include <optional>

namespace sluice::store {

// What a listen_follower (the services' and the subscriptions' followers) is doing:
//   connecting   opening its own PostgreSQL connection and running LISTEN <channel>
//   loading      reading the whole table into its registry (after every connect, and every
//                30 s as a safety net for a lost notification)
//   following    waiting for notifications; each names one row, which is re-read alone
//   backing_off  PostgreSQL failed; the next connect waits for a pause that doubles per failure
//   stopped      shut down; nothing leaves it
enum class follower_mode { connecting, loading, following, backing_off, stopped };
const char* to_string(follower_mode m);

enum class follower_event {
  connected,   // connect and LISTEN succeeded
  loaded,      // a full reload (or a one-row reload) was applied
  reload_due,  // the safety-net interval passed
  failed,      // a connect, LISTEN or read failed, or the connection broke
  pause_over,  // the back-off pause ended
  stop,
};
const char* to_string(follower_event e);

struct follower_change {
  follower_mode from;
  follower_mode to;
};

// The follower's modes and every transition, in one function; pure (no I/O, no clock) so each
// transition has a unit test. The pause doubles from `min` to `max` per failure and is back
// to `min` once a full reload succeeded.
class follower_modes {
 public:
  follower_modes(std::chrono::milliseconds min, std::chrono::milliseconds max);

  follower_mode mode() const { return mode_; }
  // The pause of the current back-off (meaningful in backing_off).
  std::chrono::milliseconds pause() const { return pause_; }

  // Applies `e`; the change, or nothing when the mode stays (an event that does not apply to
  // the current mode is ignored).
  std::optional<follower_change> on(follower_event e);

 private:
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds pause_{0};
  bool failed_before_ = false;  // the previous failure was not followed by a full reload
  follower_mode mode_ = follower_mode::connecting;
};

}  // namespace sluice::store
