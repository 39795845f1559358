#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "sluice/amqp/message_properties.hpp"

namespace sluice::amqp {

class channel;

// One message pushed to a consumer. Acknowledge it through the helpers: they go to the channel
// that delivered it and do nothing once that channel is gone, because a delivery tag means
// nothing on any other channel (acking it there would make the broker close that channel with
// 406). An unacknowledged message of a lost channel is redelivered by the broker.
struct delivery {
  std::string consumer_tag;
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  message_properties properties;
  std::string body;

  std::weak_ptr<channel> source;

  std::error_code ack() const;
  std::error_code nack(bool requeue) const;
  std::error_code reject(bool requeue) const;
};

// A mandatory publish the broker could not route (basic.return), usually 312 NO_ROUTE.
struct returned_message {
  std::uint16_t reply_code = 0;
  std::string reply_text;
  std::string exchange;
  std::string routing_key;
  message_properties properties;
  std::string body;
};

}  // namespace sluice::amqp
