#include "sluice/store/follower_mode.hpp"

#include <algorithm>

namespace sluice::store {

const char* to_string(follower_mode m) {
  switch (m) {
    case follower_mode::connecting:
      return "connecting";
    case follower_mode::loading:
      return "loading";
    case follower_mode::following:
      return "following";
    case follower_mode::backing_off:
      return "backing_off";
    case follower_mode::stopped:
      return "stopped";
  }
  return "unknown";
}

const char* to_string(follower_event e) {
  switch (e) {
    case follower_event::connected:
      return "connected";
    case follower_event::loaded:
      return "loaded";
    case follower_event::reload_due:
      return "reload_due";
    case follower_event::failed:
      return "failed";
    case follower_event::pause_over:
      return "pause_over";
    case follower_event::stop:
      return "stop";
  }
  return "unknown";
}

follower_modes::follower_modes(std::chrono::milliseconds min, std::chrono::milliseconds max)
    : min_(min), max_(std::max(min, max)) {}

std::optional<follower_change> follower_modes::on(follower_event e) {
  const follower_mode from = mode_;
  if (mode_ == follower_mode::stopped)
    return std::nullopt;
  if (e == follower_event::stop) {
    mode_ = follower_mode::stopped;
  } else if (e == follower_event::failed) {
    // A server that accepts connections but fails every read backs off like one that refuses
    // them: only a full reload proves it works again.
    pause_ = failed_before_ ? std::min(pause_ * 2, max_) : min_;
    failed_before_ = true;
    mode_ = follower_mode::backing_off;
  } else {
    switch (mode_) {
      case follower_mode::connecting:
        if (e == follower_event::connected)
          mode_ = follower_mode::loading;
        break;
      case follower_mode::loading:
        if (e == follower_event::loaded) {
          failed_before_ = false;
          pause_ = std::chrono::milliseconds{0};
          mode_ = follower_mode::following;
        }
        break;
      case follower_mode::following:
        if (e == follower_event::reload_due)
          mode_ = follower_mode::loading;
        break;
      case follower_mode::backing_off:
        if (e == follower_event::pause_over)
          mode_ = follower_mode::connecting;
        break;
      case follower_mode::stopped:
        break;
    }
  }
  if (mode_ == from)
    return std::nullopt;
  return follower_change{from, mode_};
}

}  // namespace sluice::store
