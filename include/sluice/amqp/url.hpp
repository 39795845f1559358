#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::amqp {

// A broker address in RabbitMQ's URI form: amqp://user:pass@host:port/vhost?heartbeat=30, or
// amqps:// for TLS (port 5671 unless given). User, password, host and vhost are percent-decoded
// ("%2f" is how a vhost names "/"). An empty path means the default vhost "/", as
// RABBITMQ_URL=amqp://host/ users expect.
struct url {
  bool tls = false;  // amqps://
  std::string user = "guest";
  std::string password = "guest";
  std::string host = "localhost";
  std::uint16_t port = 5672;
  std::string vhost = "/";
  // Optional query parameters of the RabbitMQ URI spec; unset means "use the option default".
  std::optional<std::chrono::seconds> heartbeat;
  std::optional<std::chrono::milliseconds> connection_timeout;
  std::optional<std::uint32_t> frame_max;
  std::optional<std::uint16_t> channel_max;

  // The address without the password, for logs.
  std::string to_string() const;

  // Returns nullopt on malformed input and, if `error` is given, a message naming the problem.
  static std::optional<url> parse(std::string_view text, std::string* error = nullptr);
};

}  // namespace sluice::amqp
