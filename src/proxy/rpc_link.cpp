#include "sluice/proxy/rpc_link.hpp"

#include "sluice/amqp/error.hpp"
#include "sluice/rpc/rpc_topology.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

namespace sluice::proxy {
namespace asio = boost::asio;

namespace {
constexpr const char* direct_reply_to_queue = "amq.rabbitmq.reply-to";
}

std::shared_ptr<rpc_link> rpc_link::create(asio::any_io_executor executor,
                                           std::shared_ptr<amqp::client> client,
                                           rpc_link_options options, reply_handler on_reply) {
  return std::shared_ptr<rpc_link>(new rpc_link(std::move(executor), std::move(client),
                                                std::move(options), std::move(on_reply)));
}

rpc_link::rpc_link(asio::any_io_executor executor, std::shared_ptr<amqp::client> client,
                   rpc_link_options options, reply_handler on_reply)
    : executor_(std::move(executor)),
      client_(std::move(client)),
      options_(std::move(options)),
      on_reply_(std::move(on_reply)),
      publisher_(amqp::publisher::create(options_.publisher)) {}

rpc_link::~rpc_link() = default;

bool rpc_link::ready() const {
  return channel_ && channel_->is_open() && publisher_->ready() &&
         client_->state() == amqp::client_state::connected;
}

void rpc_link::start() {
  const std::weak_ptr<rpc_link> weak = weak_from_this();
  client_->on_state_change([weak](amqp::client_state state) {
    if (const auto self = weak.lock()) {
      self->publisher_->set_blocked(state == amqp::client_state::blocked);
      self->event_.notify_all();
    }
  });
  running_ = true;
  asio::co_spawn(executor_, run(), asio::detached);
}

asio::awaitable<void> rpc_link::stop() {
  auto self = shared_from_this();
  stopping_ = true;
  event_.notify_all();
  while (running_)
    co_await event_.wait_until(clock::time_point::max());
  publisher_->close();
}

asio::awaitable<void> rpc_link::run() {
  auto self = shared_from_this();
  while (!stopping_) {
    if (client_->state() != amqp::client_state::connected &&
        client_->state() != amqp::client_state::blocked) {
      co_await event_.wait_until(clock::time_point::max());
      continue;
    }
    if (const auto ec = co_await set_up()) {
      if (channel_ && channel_->is_open())
        co_await channel_->close();
      channel_.reset();
      reply_to_.clear();
      co_await event_.wait_until(clock::now() + options_.retry_interval);
      continue;
    }
    // Until the channel (with its connection) ends: then a new one on the next connection.
    while (!stopping_ && channel_->is_open())
      co_await event_.wait_until(clock::time_point::max());
    spdlog::info("proxy: reply channel closed reason=\"{}\"", channel_->reason().to_string());
    reply_to_.clear();
    if (channel_->is_open())
      co_await channel_->close();
    channel_.reset();
  }
  running_ = false;
  event_.notify_all();
}

asio::awaitable<std::error_code> rpc_link::set_up() {
  auto [ec, ch] = co_await client_->open_channel();
  if (ec) {
    spdlog::warn("proxy: reply channel failed error=\"{}\"", ec.message());
    co_return ec;
  }
  channel_ = ch;
  const std::weak_ptr<rpc_link> weak = weak_from_this();
  ch->on_closed([weak](const amqp::close_reason&) {
    if (const auto self = weak.lock())
      self->event_.notify_all();
  });
  std::string queue = direct_reply_to_queue;
  if (options_.mode == reply_mode::reply_queue) {
    // Exclusive and auto-delete: the broker removes it with our connection. After a lost
    // connection the broker may still hold the old queue until it notices the dead TCP
    // connection (up to two heartbeats): the declare then fails with 405 RESOURCE_LOCKED, and
    // the next attempt takes a name of its own rather than answer 503 for that long (replies
    // to requests re-sent with the old name are then lost and those requests time out).
    amqp::queue_options opts;
    opts.durable = false;
    opts.exclusive = true;
    opts.auto_delete = true;
    std::string name = "sluice.replies." + options_.instance_id;
    if (renames_ > 0)
      name += "." + std::to_string(renames_);
    auto [dec, ok] = co_await ch->queue_declare(name, opts);
    if (dec) {
      spdlog::warn("proxy: reply queue declare failed queue={} reason=\"{}\"", name,
                   ch->reason().to_string());
      if (dec == amqp::make_error_code(amqp::reply_code::resource_locked))
        ++renames_;
      co_return dec;
    }
    queue = ok.queue;
  }
  amqp::consume_options consume;
  consume.no_ack = true;
  consume.exclusive = options_.mode == reply_mode::reply_queue;
  amqp::delivery_handler on_delivery = [weak](amqp::delivery d) {
    if (const auto self = weak.lock())
      self->on_reply_(std::move(d));
  };
  amqp::consumer_end_handler on_end = [weak](const amqp::close_reason&) {
    if (const auto self = weak.lock())
      self->event_.notify_all();
  };
  auto [cec, tag] = co_await ch->basic_consume(queue, on_delivery, consume, on_end);
  if (cec) {
    spdlog::warn("proxy: reply consumer failed reason=\"{}\"", ch->reason().to_string());
    co_return cec;
  }
  // Direct reply-to requires publishing on the channel that consumes it; the reply queue does
  // not, but one channel for both keeps the setup alike.
  if (const auto sec = co_await ch->confirm_select())
    co_return sec;
  publisher_->set_blocked(client_->state() == amqp::client_state::blocked);
  publisher_->attach(ch);
  reply_to_ = queue;
  ++generation_;
  spdlog::info("proxy: consuming replies queue={} generation={}", queue, generation_);
  co_return std::error_code{};
}

asio::awaitable<std::error_code> rpc_link::ensure_topology(const services::service& s,
                                                           clock::time_point deadline) {
  auto self = shared_from_this();
  std::shared_ptr<declaration> round;
  {
    auto& entry = topology_[s.name];
    if (!entry.running && entry.generation == generation_)
      co_return std::error_code{};
    round = entry.running;
    if (!round) {
      round = std::make_shared<declaration>();
      entry.running = round;
      // May run up to its first wait right here, and erase `entry` on an error.
      asio::co_spawn(executor_, declare(s, generation_, round), asio::detached);
    }
  }
  while (!round->finished && clock::now() < deadline)
    co_await round->done.wait_until(deadline);
  if (!round->finished)
    co_return amqp::make_error_code(amqp::errc::timeout);
  co_return round->error;
}

asio::awaitable<void> rpc_link::declare(services::service s, std::uint64_t generation,
                                        std::shared_ptr<declaration> round) {
  auto self = shared_from_this();
  // A channel of its own: a refused declare (406, arguments differ from the broker's) closes
  // the channel it was made on, and that must not be the reply channel.
  auto [ec, ch] = co_await client_->open_channel();
  if (!ec) {
    ec = co_await rpc::declare_service_topology(*ch, s);
    if (ec)
      spdlog::warn("proxy: topology of service {} failed reason=\"{}\"", s.name,
                   ch->reason().to_string());
    if (ch->is_open())
      co_await ch->close();
  }
  // Recorded only when still the service's current declaration (forget_topology drops it).
  const auto it = topology_.find(s.name);
  if (it != topology_.end() && it->second.running == round) {
    if (ec) {
      topology_.erase(it);  // the next request tries again
    } else {
      it->second.running.reset();
      it->second.generation = generation;
    }
  }
  round->error = ec;
  round->finished = true;
  round->done.notify_all();
}

void rpc_link::forget_topology(const std::string& service) {
  topology_.erase(service);
}

}  // namespace sluice::proxy
