#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>

#include "sluice/amqp/client.hpp"
#include "sluice/amqp/delivery.hpp"
#include "sluice/amqp/publisher.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/services/service.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::proxy {

// Where replies come back.
//   reply_queue      one queue per instance, sluice.replies.<instance id>: exclusive,
//                    auto-delete, consumed with no_ack. The default (BENCHMARKS.md, "Request
//                    proxy: reply path"): as fast as direct reply-to within the noise of the
//                    measurement, and its fixed name survives a reconnect, so a request the
//                    publisher re-sends on the next connection is still answered; the broker
//                    deletes the queue with the connection, so nothing is left to clean up.
//   direct_reply_to  RabbitMQ's amq.rabbitmq.reply-to pseudo queue, consumed and published on
//                    the same channel; a reply to a request sent on a channel that has since
//                    closed is dropped by the broker, and it has no flow control.
enum class reply_mode { reply_queue, direct_reply_to };

struct rpc_link_options {
  rpc_link_options() = default;

  reply_mode mode = reply_mode::reply_queue;
  std::string instance_id;  // names the reply queue
  amqp::publisher_options publisher;
  // How soon a failed channel setup is tried again while the connection is up.
  std::chrono::milliseconds retry_interval{1000};
};

// The ingress's own AMQP channel on the shared client's connection: it consumes the replies
// and publishes requests (confirm mode, through its own publisher, so proxied requests never
// queue behind the relay's persistent messages). Comes back on every reconnect; declares each
// service's topology once per connection before its first publish.
class rpc_link : public std::enable_shared_from_this<rpc_link> {
 public:
  using clock = std::chrono::steady_clock;
  using reply_handler = std::function<void(amqp::delivery)>;

  static std::shared_ptr<rpc_link> create(boost::asio::any_io_executor executor,
                                          std::shared_ptr<amqp::client> client,
                                          rpc_link_options options, reply_handler on_reply);
  ~rpc_link();

  void start();
  boost::asio::awaitable<void> stop();

  // Consuming replies and able to publish now (connection up and not blocked).
  bool ready() const;
  // The reply_to of requests published now (empty when not ready()).
  const std::string& reply_to() const { return reply_to_; }
  const std::shared_ptr<amqp::publisher>& publisher() const { return publisher_; }
  // Declares s's exchange and flavour queues unless this connection already has them; many
  // callers for one service share one declaration. Waits at most until `deadline`
  // (amqp::errc::timeout then): the declaration goes on without the caller, since a broker
  // that stopped answering holds each of its RPCs for the connection's rpc_timeout.
  boost::asio::awaitable<std::error_code> ensure_topology(const services::service& s,
                                                          clock::time_point deadline);
  // The service's definition changed: declare again before its next publish.
  void forget_topology(const std::string& service);
  // Counted on every connection the link set up (its first included).
  std::uint64_t generation() const { return generation_; }

 private:
  // One declaration of a service's topology, shared by the callers that wait for it.
  struct declaration {
    bool finished = false;
    std::error_code error;
    async_event done;
  };
  struct declared {
    std::uint64_t generation = 0;
    std::shared_ptr<declaration> running;  // null once done (then it succeeded)
  };

  rpc_link(boost::asio::any_io_executor executor, std::shared_ptr<amqp::client> client,
           rpc_link_options options, reply_handler on_reply);
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<std::error_code> set_up();
  boost::asio::awaitable<void> declare(services::service s, std::uint64_t generation,
                                       std::shared_ptr<declaration> round);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<amqp::client> client_;
  rpc_link_options options_;
  reply_handler on_reply_;
  std::shared_ptr<amqp::publisher> publisher_;
  std::shared_ptr<amqp::channel> channel_;
  std::string reply_to_;
  std::uint64_t generation_ = 0;
  std::uint64_t renames_ = 0;  // reply queue names taken after a 405 on the usual one
  std::map<std::string, declared, std::less<>> topology_;
  bool stopping_ = false;
  bool running_ = false;
  async_event event_;
};

}  // namespace sluice::proxy
