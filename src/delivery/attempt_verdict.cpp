#include "sluice/delivery/attempt_verdict.hpp"

namespace sluice::delivery {

const char* to_string(verdict v) {
  switch (v) {
    case verdict::delivered:
      return "delivered";
    case verdict::retry:
      return "retry";
    case verdict::dead_letter:
      return "dead_letter";
    case verdict::gone:
      return "gone";
  }
  return "unknown";
}

verdict classify(int status) {
  if (status >= 200 && status <= 299)
    return verdict::delivered;
  // No response at all says nothing about the message, only about the path to the target.
  if (status == 0 || status == 408 || status == 429 || (status >= 500 && status <= 599))
    return verdict::retry;
  if (status == 410)
    return verdict::gone;
  return verdict::dead_letter;
}

bool is_overload(int status, bool timed_out) {
  return timed_out || status == 429 || status == 503 || status == 504;
}

}  // namespace sluice::delivery
