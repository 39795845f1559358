#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/core/message.hpp"

namespace sluice::push {

struct push_limits {
  std::size_t max_items = 1000;
  std::size_t max_payload_bytes = 1024 * 1024;
};

// Names (queue, partition, namespace, task): 1..128 bytes of [A-Za-z0-9._:-], because they
// become RabbitMQ queue and exchange names and metric labels.
inline constexpr std::size_t max_name_bytes = 128;
// traceId, transactionId: 1..256 bytes of UTF-8 without control characters.
inline constexpr std::size_t max_id_bytes = 256;
inline constexpr std::int64_t max_buffer_ms = 60'000;
inline constexpr std::size_t max_listed_item_errors = 100;
inline constexpr std::int64_t max_buffer_max = 10'000;

struct qos0_options {
  std::int64_t buffer_ms = 100;
  std::int64_t buffer_max = 100;
};

struct item_error {
  std::size_t index;
  std::string field;
  std::string message;
};

// A parsed, fully validated push. Messages carry everything but id and created_ms, which the
// push service assigns at acceptance.
struct push_request {
  std::vector<message> items;
  std::optional<qos0_options> qos0;  // present when bufferMs or bufferMax was given
};

struct parse_outcome {
  std::optional<push_request> request;  // set when valid
  std::string error_code;               // invalid_json | invalid_request | invalid_items
  std::string error_message;
  // For invalid_items: the bad fields of the items, the first max_listed_item_errors of
  // item_error_count.
  std::vector<item_error> item_errors;
  std::size_t item_error_count = 0;
};

// Parses and validates a whole body; any invalid item rejects the whole request.
parse_outcome parse_push_request(std::string_view body, const push_limits& limits);

}  // namespace sluice::push
