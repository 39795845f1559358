#include "sluice/relay/topology_declarer.hpp"

#include "sluice/amqp/channel.hpp"
#include "sluice/relay/message_format.hpp"
#include "sluice/rpc/async_envelope.hpp"

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

bool topology_declarer::is_declared(const message& m, queue_mode mode) const {
  // The common case without building a target (no allocation per message).
  if (!rpc::is_async_queue(m.queue))
    return cache_.contains(m.queue, mode);
  const publish_target t = target_of(m, mode);
  return cache_.contains(t.key, t.mode);
}

asio::awaitable<topology_declarer::outcome> topology_declarer::declare(publish_target target) {
  const queue_mode mode = target.mode;
  std::string& queue = target.key;
  const char* what = target.exchange_type.empty() ? "queue" : "exchange";
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
  const std::string& name = target.amqp_name;
  std::error_code ec;
  if (target.exchange_type.empty()) {
    amqp::queue_options o;
    o.arguments = amqp::queue_arguments(queue_type_);
    auto [qec, ok] = co_await ch->queue_declare(name, o);
    ec = qec;
  } else {
    // Durable, no arguments: as rpc::declare_service_topology declares a service's exchange.
    const amqp::exchange_options o;
    ec = co_await ch->exchange_declare(name, target.exchange_type, o);
  }
  if (ec == amqp::reply_code::precondition_failed) {
    // It exists with other arguments (e.g. a classic queue declared before
    // RABBITMQ_QUEUE_TYPE=quorum): it still takes the messages.
    spdlog::warn("relay: {} {} exists with other arguments ({}); publishing to it as it is", what,
                 name, ch->reason().to_string());
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
    spdlog::error("relay: cannot declare {} {}: {}; its messages stay unpublished", what, name,
                  ch->reason().to_string());
    cache_.refuse(queue, mode, declare_cache::clock::now() + 10s);
    co_return outcome::refused;
  }
  co_return outcome::retry;
}

}  // namespace sluice::relay
