#include "sluice/relay/relay_service.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;
using namespace std::chrono_literals;

std::shared_ptr<relay_service> relay_service::create(asio::any_io_executor executor,
                                                     store::pg_pool& pool, queue_modes& modes,
                                                     metrics::registry& metrics,
                                                     relay_options options) {
  auto self = std::shared_ptr<relay_service>(
      new relay_service(std::move(executor), pool, modes, metrics, std::move(options)));
  const std::weak_ptr<relay_service> weak = self;
  metrics.on_collect([weak] {
    if (const auto s = weak.lock())
      s->collect();
  });
  return self;
}

relay_service::relay_service(asio::any_io_executor executor, store::pg_pool& pool,
                             queue_modes& modes, metrics::registry& metrics, relay_options options)
    : options_(std::move(options)),
      metrics_(metrics),
      store_(pool),
      marker_(executor, store_, options_.marker),
      client_(amqp::client::create(executor, options_.client)),
      publisher_(client_->get_publisher()),
      schema_(options_.schema_ready),
      declarer_(client_, options_.queue_type),
      handoff_(publish_handoff::create(publisher_, declarer_, marker_, metrics_)),
      pending_(options_.queue_max, options_.queue_max_bytes, options_.claim.grace / 2, client_,
               modes, declarer_, *handoff_, metrics_),
      sweeper_(sweeper_options{options_.sweep_interval, options_.claim, options_.statement_timeout},
               store_, client_, modes, schema_, declarer_, *handoff_, metrics_),
      backlog_(options_.sweep_interval, options_.statement_timeout, store_, schema_, metrics_),
      follower_(modes, options_.modes_refresh_interval, options_.statement_timeout, schema_),
      loops_(std::move(executor)) {}

relay_service::~relay_service() = default;

void relay_service::stored(std::vector<message> batch) {
  if (stopping_ || batch.empty())
    return;
  pending_.push(std::move(batch));
}

void relay_service::start() {
  if (started_)
    return;
  started_ = true;
  // The client and its publisher may outlive this service (client() hands it out).
  const std::weak_ptr<relay_service> weak = weak_from_this();
  client_->on_state_change([weak](amqp::client_state s) {
    if (const auto self = weak.lock())
      self->on_state(s);
  });
  publisher_->on_ready([weak] {
    if (const auto self = weak.lock())
      self->pending_.wake();
  });
  const std::weak_ptr<publish_handoff> handoff = handoff_;
  marker_.on_settled([handoff](std::span<const uuid> ids) {
    if (const auto h = handoff.lock())
      h->settled(ids);
  });
  // Members of this service, called only while it is alive.
  handoff_->on_outcome([this] { pending_.wake(); });
  follower_.on_loaded([this] { pending_.wake(); });
  client_->start();
  spawn("schema", schema_.run());
  spawn("modes", follower_.run());
  spawn("marker", marker_.run());
  spawn("publisher", pending_.run());
  spawn("sweeper", sweeper_.run());
  spawn("backlog", backlog_.run());
  spdlog::info(
      "relay: publishing to RabbitMQ at {} queue_type={} confirm_window={} sweep_grace_ms={}",
      options_.client.connection.server.to_string(), amqp::to_string(options_.queue_type),
      options_.client.publisher.confirm_window, options_.claim.grace.count());
}

void relay_service::spawn(const char* name, asio::awaitable<void> loop) {
  loops_.spawn(name, std::move(loop), shared_from_this());
}

asio::awaitable<void> relay_service::stop(std::chrono::milliseconds grace) {
  if (!started_ || stopping_)
    co_return;
  auto self = shared_from_this();
  const auto deadline = clock::now() + grace;
  stopping_ = true;
  pending_.stop(deadline);
  sweeper_.stop();
  backlog_.stop();
  follower_.stop();
  schema_.stop();
  co_await loops_.wait(deadline, "publisher");
  const bool idle = co_await publisher_->wait_idle(deadline);
  if (const std::size_t left = pending_.queue().size(); left != 0) {
    metrics_.deferred.inc(static_cast<double>(left));
    spdlog::info("relay: {} messages not published before shutdown; a sweeper publishes them",
                 left);
  }
  if (!idle) {
    spdlog::info("relay: {} publishes unconfirmed at shutdown; a sweeper publishes them again",
                 publisher_->in_flight());
  }
  co_await client_->stop();
  // Marks of what was confirmed get a bounded moment of their own even when the grace is
  // spent: each one saves a duplicate publish later.
  co_await marker_.stop(std::max(deadline, clock::now() + 2s));
  if (!co_await loops_.wait(clock::now() + 5s))
    spdlog::warn("relay: {} loops still running after stop", loops_.running());
  spdlog::info("relay: stopped published={} marked={}", metrics_.published.value(),
               marker_.marked_total());
}

relay_health relay_service::health() const {
  const auto state = client_->state();
  if (state == amqp::client_state::connected)
    return {true, "connected"};
  if (state == amqp::client_state::blocked) {
    const auto conn = client_->current_connection();
    return {false, "connected but blocked by the broker: " +
                       (conn ? conn->blocked_reason() : std::string("unknown reason"))};
  }
  std::string detail = amqp::to_string(state);
  if (client_->last_error().error)
    detail += "; last error: " + client_->last_error().to_string();
  return {false, detail};
}

void relay_service::on_state(amqp::client_state state) {
  const bool up = state == amqp::client_state::connected || state == amqp::client_state::blocked;
  // Not when stopping: nobody re-sends then, and other instances should sweep at once.
  if (was_up_ && !up && !stopping_ && state != amqp::client_state::stopped &&
      handoff_->in_flight_count() != 0) {
    spawn("hold",
          handoff_->hold_unconfirmed(store_, options_.claim.lease, options_.statement_timeout));
  }
  was_up_ = up;
  if (state == amqp::client_state::connected)
    sweeper_.kick();
  pending_.wake();
}

void relay_service::collect() {
  const auto state = client_->state();
  metrics_.amqp_connected.set(
      state == amqp::client_state::connected || state == amqp::client_state::blocked ? 1 : 0);
  metrics_.amqp_blocked.set(state == amqp::client_state::blocked ? 1 : 0);
  const std::uint64_t reconnects = client_->stats().reconnects;
  if (reconnects > reconnects_reported_) {
    metrics_.amqp_reconnects.inc(static_cast<double>(reconnects - reconnects_reported_));
    reconnects_reported_ = reconnects;
  }
  metrics_.queue_items.set(static_cast<double>(pending_.queue().size()));
  metrics_.unconfirmed.set(static_cast<double>(publisher_->in_flight()));
}

}  // namespace sluice::relay
