#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/amqp/url.hpp"

#include <amqp.h>

namespace sluice::amqp::test {

// A message as rabbitmq-c's own blocking client saw it. Filled by code that shares nothing
// with the module under test, so the module cannot hide its bugs from its own tests.
struct received_message {
  std::string exchange;
  std::string routing_key;
  bool redelivered = false;
  std::string body;
  std::optional<std::string> content_type;
  std::optional<std::uint8_t> delivery_mode;
  std::optional<std::string> message_id;
  std::optional<std::string> correlation_id;
  std::optional<std::uint64_t> timestamp;
  std::optional<std::string> reply_to;
  std::map<std::string, std::string> string_headers;
  std::map<std::string, std::int64_t> int_headers;
};

struct independent_properties {
  std::optional<std::string> content_type;
  std::optional<std::uint8_t> delivery_mode;
  std::optional<std::string> message_id;
  std::optional<std::string> correlation_id;
  std::map<std::string, std::string> string_headers;
};

// rabbitmq-c's blocking API (login, RPCs, amqp_basic_publish, amqp_consume_message): the
// independent party in tests. Throws std::runtime_error on any failure. Blocking: call it
// from the test thread, never from inside the io_context under test while that must run.
class independent_client {
 public:
  explicit independent_client(const url& broker);
  ~independent_client();
  independent_client(const independent_client&) = delete;
  independent_client& operator=(const independent_client&) = delete;

  void declare_queue(const std::string& name, bool durable, const std::string& queue_type = "");
  void delete_queue(const std::string& name);
  void declare_exchange(const std::string& name, const std::string& type, bool durable);
  void bind_queue(const std::string& queue, const std::string& exchange,
                  const std::string& routing_key = "");
  void delete_exchange(const std::string& name);
  std::uint32_t message_count(const std::string& queue);
  void publish(const std::string& exchange, const std::string& routing_key, const std::string& body,
               const independent_properties& properties = {});
  // Consumes (acking each) until `count` messages arrived or none came for `idle_timeout`.
  std::vector<received_message> consume(const std::string& queue, std::size_t count,
                                        std::chrono::milliseconds idle_timeout);

 private:
  void check_rpc(const char* what);

  amqp_connection_state_t state_;
  int next_channel_ = 2;
};

}  // namespace sluice::amqp::test
