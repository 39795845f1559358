#include "sluice/push/failover_mode.hpp"

namespace sluice::push {

const char* to_string(push_mode m) {
  switch (m) {
    case push_mode::failing_over:
      return "failing_over";
    case push_mode::draining:
      return "draining";
    case push_mode::handing_back:
      return "handing_back";
    case push_mode::direct:
      return "direct";
  }
  return "unknown";
}

const char* to_string(push_event e) {
  switch (e) {
    case push_event::db_unavailable:
      return "db_unavailable";
    case push_event::db_available:
      return "db_available";
    case push_event::log_drained:
      return "log_drained";
  }
  return "unknown";
}

std::optional<mode_change> failover_mode::on(push_event e, std::size_t appends_in_flight) {
  const push_mode from = mode_;
  push_mode to = from;
  switch (e) {
    case push_event::db_unavailable:
      to = push_mode::failing_over;
      break;
    case push_event::db_available:
      if (from == push_mode::failing_over)
        to = push_mode::draining;
      break;
    case push_event::log_drained:
      // Appends still being written are records the replayer has not seen: going direct now
      // would let a new push overtake them.
      if (from == push_mode::draining || from == push_mode::handing_back)
        to = appends_in_flight > 0 ? push_mode::handing_back : push_mode::direct;
      break;
  }
  if (to == from)
    return std::nullopt;
  mode_ = to;
  return mode_change{from, to};
}

}  // namespace sluice::push
