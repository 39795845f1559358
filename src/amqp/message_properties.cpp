#include "sluice/amqp/message_properties.hpp"

#include <utility>

namespace sluice::amqp {

const char* oversized_property(const message_properties& p) {
  using short_string = std::optional<std::string> message_properties::*;
  static constexpr std::pair<const char*, short_string> short_strings[] = {
      {"content_type", &message_properties::content_type},
      {"content_encoding", &message_properties::content_encoding},
      {"correlation_id", &message_properties::correlation_id},
      {"reply_to", &message_properties::reply_to},
      {"expiration", &message_properties::expiration},
      {"message_id", &message_properties::message_id},
      {"type", &message_properties::type},
      {"user_id", &message_properties::user_id},
      {"app_id", &message_properties::app_id},
  };
  for (const auto& [name, field] : short_strings) {
    const auto& value = p.*field;
    if (value && value->size() > max_short_string_bytes)
      return name;
  }
  if (p.headers) {
    for (const auto& entry : *p.headers) {
      if (entry.key.size() > max_field_name_bytes)
        return "a header name";
    }
  }
  return nullptr;
}

}  // namespace sluice::amqp
