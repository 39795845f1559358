#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sluice/amqp/field_table.hpp"

namespace sluice::amqp {

// The basic-class content properties. Unset optionals are not sent at all (the property flag
// stays clear), which is not the same as an empty string.
struct message_properties {
  std::optional<std::string> content_type;
  std::optional<std::string> content_encoding;
  std::optional<field_table> headers;
  std::optional<std::uint8_t> delivery_mode;  // 2 = persistent
  std::optional<std::uint8_t> priority;
  std::optional<std::string> correlation_id;
  std::optional<std::string> reply_to;
  std::optional<std::string> expiration;
  std::optional<std::string> message_id;
  std::optional<std::uint64_t> timestamp;  // seconds since the Unix epoch
  std::optional<std::string> type;
  std::optional<std::string> user_id;
  std::optional<std::string> app_id;

  friend bool operator==(const message_properties&, const message_properties&) = default;
};

inline constexpr std::uint8_t delivery_mode_transient = 1;
inline constexpr std::uint8_t delivery_mode_persistent = 2;

}  // namespace sluice::amqp
