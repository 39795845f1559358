#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sluice/amqp/client.hpp"
#include "sluice/amqp/settings.hpp"
#include "sluice/core/message.hpp"
#include "sluice/relay/declare_cache.hpp"
#include "sluice/relay/message_format.hpp"
#include "sluice/relay/queue_mode.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

// Declares the RabbitMQ queue or exchange a sluice queue's messages go to (for an async
// request: its service's headers exchange, never the flavour queues, which the ingress and the
// workers declare through rpc_topology), once per connection, on a channel of its own (a
// refused declare closes its channel, never the publisher's). Shared by the in-memory
// publisher and the sweeper, which both publish.
class topology_declarer {
 public:
  enum class outcome {
    declared,
    retry,    // the connection or channel is not there now: try again shortly
    refused,  // the broker said no: the messages stay unpublished for a while
  };

  topology_declarer(std::shared_ptr<amqp::client> client, amqp::queue_type queue_type);
  topology_declarer(const topology_declarer&) = delete;
  topology_declarer& operator=(const topology_declarer&) = delete;

  // Starts from nothing when the client is on a new connection; call before is_declared().
  void sync_connection();
  bool is_declared(const message& m, queue_mode mode) const;
  boost::asio::awaitable<outcome> declare(publish_target target);

  void forget_queues() { cache_.forget_queues(); }
  void forget_all() { cache_.forget_all(); }

 private:
  std::shared_ptr<amqp::client> client_;
  amqp::queue_type queue_type_;
  declare_cache cache_;
  std::shared_ptr<amqp::channel> channel_;
};

}  // namespace sluice::relay
