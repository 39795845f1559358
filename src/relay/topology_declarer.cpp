#include "sluice/relay/topology_declarer.hpp"

#include "sluice/amqp/channel.hpp"
#include "sluice/relay/message_format.hpp"

#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;
using namespace std::chrono_literals;

topology_declarer::topology_declarer(std::shared_ptr<amqp::client> client,
                                     amqp::queue_type queue_type)
    : client_(std::move(client)), queue_type_(queue_type) {}

void topology_declarer::sync_connection() {
  // The client counts a connection only once it is fully set up, but the publisher is
  // attached (and the publishing loops may run) a little earlier: the connection's identity
  // tells too.
  if (cache_.sync(client_->stats().connects, client_->current_connection().get()))
    channel_.reset();
}

asio::awaitable<topology_declarer::outcome> topology_declarer::declare(std::string queue,
                                                                       queue_mode mode) {
  if (cache_.refused(queue, mode, declare_cache::clock::now()))
    co_return outcome::refused;
  const std::uint64_t generation = cache_.generation();
  if (!channel_ || !channel_->is_open()) {
    auto [ec, ch] = co_await client_->open_channel();
    if (ec)
      co_return outcome::retry;
    channel_ = std::move(ch);
  }
  const auto ch = channel_;
  const std::string name = amqp_name(queue);
  std::error_code ec;
  if (mode == queue_mode::queue) {
    amqp::queue_options o;
    o.arguments = amqp::queue_arguments(queue_type_);
    auto [qec, ok] = co_await ch->queue_declare(name, o);
    ec = qec;
  } else {
    const amqp::exchange_options o;
    const std::string type = "fanout";
    ec = co_await ch->exchange_declare(name, type, o);
  }
  if (ec == amqp::reply_code::precondition_failed) {
    // It exists with other arguments (e.g. a classic queue declared before
    // RABBITMQ_QUEUE_TYPE=quorum): it still takes the messages.
    spdlog::warn("relay: {} {} exists with other arguments ({}); publishing to it as it is",
                 mode == queue_mode::queue ? "queue" : "exchange", name, ch->reason().to_string());
    ec = {};
  }
  if (!ec) {
    // A declare that outlived its connection says nothing about the next one.
    if (generation == cache_.generation() &&
        cache_.is_current(client_->stats().connects, client_->current_connection().get()))
      cache_.insert(std::move(queue), mode);
    co_return outcome::declared;
  }
  if (ec.category() == amqp::reply_category() && !ch->closed_with_connection()) {
    // The broker said no (access refused, not allowed, ...): retrying at once would only
    // fail again; the rows stay unpublished and the sweeper tries again later.
    spdlog::error("relay: cannot declare {} {}: {}; its messages stay unpublished",
                  mode == queue_mode::queue ? "queue" : "exchange", name, ch->reason().to_string());
    cache_.refuse(queue, mode, declare_cache::clock::now() + 10s);
    co_return outcome::refused;
  }
  co_return outcome::retry;
}

}  // namespace sluice::relay
