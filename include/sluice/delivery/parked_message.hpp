#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/core/uuid.hpp"

namespace sluice::delivery {

// A message as a subscription's delivery path carries it between RabbitMQ and PostgreSQL (a
// retry row, a dead letter): enough to publish it again exactly as the relay did.
struct parked_message {
  std::string queue;
  std::string subscription;
  uuid message_id;
  std::string partition;
  // The AMQP headers as published (queue, partition, namespace, task, traceId, transactionId),
  // x-sluice-* delivery headers excluded.
  std::vector<std::pair<std::string, std::string>> headers;
  std::int64_t created_ms = 0;
  std::string payload;
  std::uint32_t attempt = 1;  // the attempt the next delivery will carry
  std::optional<std::int64_t> first_attempt_ms;
  // Set by retry_store::claim_due: the row came from a re-drive (origin 'redrive') rather than
  // a failed attempt, and the claim's lease (claimed_until in Unix microseconds), which
  // retry_store::remove() matches so that it never deletes a row parked again since (0: any).
  bool redrive = false;
  std::int64_t claim_token = 0;
};

// The delivery headers sluice adds when it publishes a message again (a retry or a re-drive);
// absent on the relay's first publish (attempt 1).
inline constexpr const char* attempt_header = "x-sluice-attempt";
inline constexpr const char* first_attempt_header = "x-sluice-first-attempt-ms";
// Set on a retry of an ordered subscription's partition head (README: ordering): it is
// delivered even though its partition has parked messages.
inline constexpr const char* released_header = "x-sluice-released";

}  // namespace sluice::delivery
