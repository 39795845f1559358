#include "sluice/amqp/message_properties.hpp"

namespace sluice::amqp {

const char* oversized_property(const message_properties& p) {
  const auto too_long = [](const std::optional<std::string>& s) {
    return s && s->size() > max_short_string_bytes;
  };
  if (too_long(p.content_type))
    return "content_type";
  if (too_long(p.content_encoding))
    return "content_encoding";
  if (too_long(p.correlation_id))
    return "correlation_id";
  if (too_long(p.reply_to))
    return "reply_to";
  if (too_long(p.expiration))
    return "expiration";
  if (too_long(p.message_id))
    return "message_id";
  if (too_long(p.type))
    return "type";
  if (too_long(p.user_id))
    return "user_id";
  if (too_long(p.app_id))
    return "app_id";
  if (p.headers) {
    for (const auto& entry : *p.headers) {
      if (entry.key.size() > max_field_name_bytes)
        return "a header name";
    }
  }
  return nullptr;
}

}  // namespace sluice::amqp
