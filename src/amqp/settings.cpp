#include "sluice/amqp/settings.hpp"

#include "sluice/core/ascii_lower.hpp"

namespace sluice::amqp {

std::optional<queue_type> parse_queue_type(std::string_view text) {
  const std::string lower = ascii_lower(text);
  if (lower == "quorum") {
    return queue_type::quorum;
  }
  if (lower == "classic") {
    return queue_type::classic;
  }
  return std::nullopt;
}

const char* to_string(queue_type type) {
  return type == queue_type::quorum ? "quorum" : "classic";
}

field_table queue_arguments(queue_type type) {
  return field_table{{"x-queue-type", to_string(type)}};
}

std::optional<client_options> make_client_options(const settings& s, std::string* error) {
  std::string url_error;
  const auto parsed = url::parse(s.url, &url_error);
  if (!parsed) {
    if (error != nullptr) {
      *error = "RABBITMQ_URL: " + url_error;
    }
    return std::nullopt;
  }
  if (s.confirm_window == 0) {
    if (error != nullptr) {
      *error = "RABBITMQ_CONFIRM_WINDOW: must be at least 1";
    }
    return std::nullopt;
  }
  if (s.heartbeat.count() < 0 || s.heartbeat.count() > 65535) {
    if (error != nullptr) {
      *error = "RABBITMQ_HEARTBEAT_SEC: must be between 0 (off) and 65535";
    }
    return std::nullopt;
  }
  if (s.confirm_window_bytes == 0) {
    if (error != nullptr) {
      *error = "RABBITMQ_CONFIRM_WINDOW_BYTES: must be at least 1";
    }
    return std::nullopt;
  }
  client_options o;
  o.connection.server = *parsed;
  o.connection.heartbeat = s.heartbeat;
  o.connection.ca_file = s.ca_file;
  o.publisher.confirm_window = s.confirm_window;
  o.publisher.confirm_window_bytes = s.confirm_window_bytes;
  return o;
}

}  // namespace sluice::amqp
