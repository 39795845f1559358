#pragma once

#include <string_view>

namespace sluice::delivery {

// What one attempt's result means for the message.
enum class verdict {
  delivered,    // 2xx: ack
  retry,        // 408, 429, 5xx, timeout, connection error: later attempt, or dead letter
  dead_letter,  // any other status (4xx, 1xx/3xx final): dead-lettered at once
  gone,         // 410: dead-lettered at once, and the subscription is paused
};

const char* to_string(verdict v);

// status 0 means no response at all (connect error, timeout, bad response).
verdict classify(int status);

// Responses that say "too much": 429, 503, 504, and timeouts (status 0 with timed_out). The
// adaptive concurrency shrinks on them.
bool is_overload(int status, bool timed_out);

}  // namespace sluice::delivery
