#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/amqp/client.hpp"
#include "sluice/amqp/field_table.hpp"

namespace sluice::amqp {

enum class queue_type { quorum, classic };

// "quorum" or "classic", any case; nullopt otherwise.
std::optional<queue_type> parse_queue_type(std::string_view text);
const char* to_string(queue_type type);
// The x-queue-type argument for queue declarations.
field_table queue_arguments(queue_type type);

// The four RabbitMQ settings the application exposes, as plain values. The config module
// fills this from RABBITMQ_URL, RABBITMQ_HEARTBEAT_SEC, RABBITMQ_CONFIRM_WINDOW and
// RABBITMQ_QUEUE_TYPE; this module never reads the environment itself.
struct settings {
  std::string url = "amqp://guest:guest@localhost:5672/";
  std::chrono::seconds heartbeat{30};
  std::size_t confirm_window = 1000;
  // Not an environment setting yet (the application does not fill it): the default applies.
  std::size_t confirm_window_bytes = 64ULL << 20;
  queue_type queues = queue_type::quorum;
  std::string ca_file;  // RABBITMQ_CA_FILE: amqps:// peer verification; empty = system store
};

// Client options for these settings (the rest keep their defaults). Returns nullopt, and a
// message naming the setting, for a malformed URL or a zero confirm window.
std::optional<client_options> make_client_options(const settings& s, std::string* error = nullptr);

}  // namespace sluice::amqp
