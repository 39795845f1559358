#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sluice/core/uuid.hpp"

namespace sluice {

// One pushed message as it travels between stages (HTTP → buffer/PostgreSQL → RabbitMQ).
// `payload` holds the JSON text exactly as the client sent it: sluice passes it through and
// never re-serializes it.
struct message {
  uuid id;                  // uuidv7, assigned when the push is accepted
  std::int64_t created_ms;  // acceptance time, Unix epoch milliseconds
  std::string queue;
  std::string partition;  // "Default" when the client gave none
  std::optional<std::string> namespace_;
  std::optional<std::string> task;
  std::optional<std::string> trace_id;
  std::optional<std::string> transaction_id;  // idempotency key within the queue
  std::string payload;                        // raw JSON text
  // The event time the producer gave (ingest's time_field), Unix epoch microseconds; none =
  // created_ms is the event time.
  std::optional<std::int64_t> event_us;
};

}  // namespace sluice
