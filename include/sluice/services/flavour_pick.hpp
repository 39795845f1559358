#pragma once

#include <chrono>
#include <string_view>

#include "sluice/services/service.hpp"

namespace sluice::services {

// The flavour a request goes to: split by the schedule's weights while it is valid,
// deterministically by `request_key` (X-Request-Id or Idempotency-Key), so a retry with the same
// key lands on the same flavour; the default flavour without a schedule, once it expired, or when
// every weight is 0. Never null for a valid service.
const flavour* pick_flavour(const service& s, std::string_view request_key,
                            std::chrono::system_clock::time_point now);

}  // namespace sluice::services
