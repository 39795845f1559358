#pragma once

#include <optional>
#include <string_view>

namespace sluice::relay {

// How the messages of one sluice queue reach RabbitMQ.
enum class queue_mode {
  // A durable RabbitMQ queue `sluice.<queue>`: consumers compete, each message goes to one.
  queue,
  // A durable fanout exchange `sluice.<queue>`: every subscriber binds a queue of its own and
  // gets every message.
  broadcast,
};

const char* to_string(queue_mode mode);
// "queue" or "broadcast", exactly; nullopt otherwise.
std::optional<queue_mode> parse_queue_mode(std::string_view text);

}  // namespace sluice::relay
