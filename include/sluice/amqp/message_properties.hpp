#pragma once

#include <cstddef>
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

// AMQP 0-9-1 short strings (names, most properties) carry at most 255 bytes; field-table keys
// at most 128.
inline constexpr std::size_t max_short_string_bytes = 255;
inline constexpr std::size_t max_field_name_bytes = 128;

// The name of the first property that cannot be encoded (a short string over 255 bytes, a
// header name over 128), or nullptr when all fit. A publish is checked before it is sent: one
// message that cannot be encoded must not take the connection down with it.
const char* oversized_property(const message_properties& properties);

inline constexpr std::uint8_t delivery_mode_transient = 1;
inline constexpr std::uint8_t delivery_mode_persistent = 2;

}  // namespace sluice::amqp
