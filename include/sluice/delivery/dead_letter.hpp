#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sluice/delivery/parked_message.hpp"

namespace sluice::delivery {

// One row of sluice_dead_letters (GET /api/v1/dlq).
struct dead_letter {
  parked_message message;  // message.attempt: the attempts made
  std::string reason;      // attempts_exhausted, rejected, gone, bad_batch_response, ...
  std::optional<int> last_status;
  std::int64_t first_attempt_ms = 0;
  std::int64_t last_attempt_ms = 0;
  std::string response_excerpt;  // at most 1 KiB of the last response body, or the error text
  std::int64_t dead_ms = 0;      // set by the store
};

}  // namespace sluice::delivery
