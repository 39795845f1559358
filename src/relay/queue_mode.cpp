#include "sluice/relay/queue_mode.hpp"

namespace sluice::relay {

const char* to_string(queue_mode mode) {
  return mode == queue_mode::broadcast ? "broadcast" : "queue";
}

std::optional<queue_mode> parse_queue_mode(std::string_view text) {
  if (text == "queue")
    return queue_mode::queue;
  if (text == "broadcast")
    return queue_mode::broadcast;
  return std::nullopt;
}

}  // namespace sluice::relay
