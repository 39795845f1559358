#include "sluice/delivery/delivery_service.hpp"

#include <algorithm>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

namespace sluice::delivery {
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

std::shared_ptr<delivery_service> delivery_service::create(
    asio::any_io_executor executor, std::shared_ptr<amqp::client> amqp,
    subscription_registry& registry, const relay::queue_modes& modes, http::client& http,
    metrics::registry& metrics, delivery_stores stores, delivery_service_options options) {
  return std::shared_ptr<delivery_service>(
      new delivery_service(std::move(executor), std::move(amqp), registry, modes, http, metrics,
                           std::move(stores), std::move(options)));
}

delivery_service::delivery_service(asio::any_io_executor executor,
                                   std::shared_ptr<amqp::client> amqp,
                                   subscription_registry& registry, const relay::queue_modes& modes,
                                   http::client& http, metrics::registry& metrics,
                                   delivery_stores stores, delivery_service_options options)
    : metrics_(metrics),
      breakers_(metrics, options.breaker),
      context_(
          std::make_shared<delivery_context>(executor, std::move(amqp), http, metrics, breakers_)),
      registry_(registry),
      modes_(modes),
      options_(std::move(options)),
      loops_(executor, "subscription") {
  context_->retries = stores.retries;
  context_->dead_letters = stores.dead_letters;
  context_->subscriptions = stores.subscriptions;
  context_->recorder = stores.recorder;
  context_->on_parked = std::move(stores.on_parked);
  context_->options = options_.delivery;
  context_->routes = options_.routes;
}

delivery_service::~delivery_service() = default;

void delivery_service::reconcile(const std::string& queue, const std::string& name) {
  if (!started_ || stopping_ || !registry_.loaded() || !modes_.loaded())
    return;
  const auto key = std::pair{queue, name};
  const auto wanted = registry_.find(queue, name);
  const bool broadcast = modes_.mode_of(queue) == relay::queue_mode::broadcast;
  const auto it = consumers_.find(key);
  const auto retired = retiring_.find(key);
  if (!wanted || wanted->paused) {
    if (it != consumers_.end()) {
      spdlog::info("delivery: stopping the consumer of subscription {}/{} ({})", queue, name,
                   wanted ? "paused" : "removed");
      auto old = it->second;
      old->stop();
      consumers_.erase(it);
      if (!wanted && old->broadcast())
        old->delete_queue_when_finished();
      // Kept until it finished: a consumer of the subscription started meanwhile (resumed,
      // added again) waits for it, so there is never more than one.
      retiring_[key] = std::move(old);
    } else if (!wanted && broadcast) {
      if (retired != retiring_.end() && !retired->second->finished() &&
          retired->second->broadcast())
        retired->second->delete_queue_when_finished();
      else
        loops_.spawn(delete_queue(queue, name), shared_from_this());
    }
    return;
  }
  std::shared_ptr<subscription_consumer> predecessor;
  if (it != consumers_.end()) {
    const auto& current = it->second;
    const bool same = current->broadcast() == broadcast && current->definition()->same_as(*wanted);
    // A consumer stopped by a 410 stays stopped until the pause it wrote arrives (then it is
    // removed above) or the subscription changes (a resume, a new definition).
    if (same && (!current->gone() || current->definition()->updated_ms == wanted->updated_ms))
      return;
    spdlog::info("delivery: restarting the consumer of subscription {}/{} ({})", queue, name,
                 current->broadcast() != broadcast ? "queue mode changed" : "changed");
    predecessor = current;
    predecessor->stop();
  } else if (retired != retiring_.end()) {
    predecessor = std::move(retired->second);
    retiring_.erase(retired);
  }
  // The queue the predecessor was to delete once finished is this one's again.
  if (predecessor && predecessor->broadcast() == broadcast)
    predecessor->keep_queue();
  auto c =
      std::make_shared<subscription_consumer>(context_, wanted, broadcast, std::move(predecessor));
  consumers_[key] = c;
  loops_.spawn(c->run(), c);
}

void delivery_service::forget_unused_breakers() {
  std::erase_if(retiring_, [](const auto& e) { return e.second->finished(); });
  std::set<std::string, std::less<>> in_use;
  for (const auto& [key, c] : consumers_)
    in_use.insert(c->target());
  for (const auto& [key, c] : retiring_)
    in_use.insert(c->target());
  breakers_.retain(in_use);
}

void delivery_service::reconcile_all() {
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& s : registry_.all()) {
    seen.emplace(s->queue, s->name);
    reconcile(s->queue, s->name);
  }
  std::vector<std::pair<std::string, std::string>> gone;
  for (const auto& [key, c] : consumers_) {
    if (!seen.contains(key))
      gone.push_back(key);
  }
  for (const auto& [q, n] : gone)
    reconcile(q, n);
  forget_unused_breakers();
}

asio::awaitable<void> delivery_service::follow_modes() {
  auto self = shared_from_this();
  bool was_ready = false;
  while (!stopping_) {
    const bool ready = registry_.loaded() && modes_.loaded();
    // Until both were loaded once nothing runs; after that a pass every interval picks up the
    // queue mode changes (the relay refreshes queue_modes, which has no listeners).
    if (ready) {
      if (!was_ready)
        spdlog::info("delivery: {} subscription(s) known; starting their consumers",
                     registry_.all().size());
      reconcile_all();
      was_ready = true;
    }
    const auto until =
        clock::now() + (ready ? options_.mode_check_interval : std::chrono::milliseconds(200));
    while (!stopping_ && clock::now() < until)
      co_await wake_.wait_until(until);
  }
}

asio::awaitable<void> delivery_service::delete_queue(std::string queue, std::string name) {
  auto self = shared_from_this();
  if (stopping_ || !context_->amqp->ready())
    co_return;
  auto [ec, ch] = co_await context_->amqp->open_channel();
  if (ec)
    co_return;
  // Added again while the channel opened: the queue is the new subscription's.
  const std::string amqp_queue = consume_queue(queue, name, true);
  if (!registry_.find(queue, name) && !consumers_.contains(std::pair{queue, name})) {
    auto [dec, count] = co_await ch->queue_delete(amqp_queue);
    if (!dec)
      spdlog::info("delivery: deleted queue {} of a removed subscription ({} messages in it)",
                   amqp_queue, count);
  }
  if (ch->is_open())
    co_await ch->close();
}

void delivery_service::collect() {
  forget_unused_breakers();
  struct per_queue {
    double in_flight = 0;
    double limit = 0;
    double lag = 0;
  };
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::map<std::string, per_queue> by_queue;
  for (const auto& [key, c] : consumers_) {
    auto& q = by_queue[key.first];
    const auto s = c->status();
    q.in_flight += static_cast<double>(s.in_flight);
    q.limit += s.concurrency_limit;
    q.lag = std::max(q.lag, c->lag_seconds(now_ms));
  }
  // Stopped, still finishing: what they hold is held until they end (their limit no longer
  // admits anything).
  for (const auto& [key, c] : retiring_) {
    auto& q = by_queue[key.first];
    q.in_flight += static_cast<double>(c->held());
    q.lag = std::max(q.lag, c->lag_seconds(now_ms));
  }
  auto& m = context_->metrics;
  for (const auto& q : gauge_queues_) {
    if (!by_queue.contains(q)) {
      m.in_flight.remove({q});
      m.concurrency_limit.remove({q});
      m.lag.remove({q});
    }
  }
  gauge_queues_.clear();
  for (const auto& [q, v] : by_queue) {
    gauge_queues_.push_back(q);
    m.in_flight.with({q}).set(v.in_flight);
    m.concurrency_limit.with({q}).set(v.limit);
    m.lag.with({q}).set(v.lag);
  }
}

void delivery_service::start() {
  if (started_)
    return;
  started_ = true;
  const std::weak_ptr<delivery_service> weak = weak_from_this();
  registry_.on_change([weak](const std::string& queue, const std::string& name) {
    if (const auto self = weak.lock())
      self->reconcile(queue, name);
  });
  context_->amqp->on_state_change([weak](amqp::client_state) {
    if (const auto self = weak.lock()) {
      for (const auto& [key, c] : self->consumers_)
        c->wake();
    }
  });
  // The gauges mirror the consumers' state at scrape time (the exposition runs on the loop).
  metrics_.on_collect([weak] {
    if (const auto self = weak.lock())
      self->collect();
  });
  loops_.spawn(follow_modes(), shared_from_this());
}

asio::awaitable<void> delivery_service::stop() {
  auto self = shared_from_this();
  stopping_ = true;
  wake_.notify_all();
  for (const auto& [key, c] : consumers_)
    c->stop();
  consumers_.clear();
  retiring_.clear();
  const auto grace = options_.delivery.stop_grace;
  if (!co_await loops_.wait(clock::now() + grace + std::chrono::seconds(5))) {
    spdlog::warn("delivery: consumers did not stop in time; cancelling them");
    loops_.cancel_all();
    co_await loops_.wait(clock::now() + std::chrono::seconds(5));
  }
}

std::vector<consumer_status> delivery_service::status() const {
  std::vector<consumer_status> out;
  out.reserve(consumers_.size());
  for (const auto& [key, c] : consumers_)
    out.push_back(c->status());
  return out;  // the map's order: (queue, name)
}

nlohmann::json delivery_service::status_of(std::string_view queue, std::string_view name) const {
  const auto it = consumers_.find(std::pair{std::string(queue), std::string(name)});
  if (it == consumers_.end()) {
    std::string circuit = "closed";
    if (const auto s = registry_.find(queue, name))
      circuit = to_string(breakers_.state(subscription_consumer::target_of(*s)));
    return {
        {"consuming", false}, {"inFlight", 0}, {"concurrencyLimit", nullptr}, {"circuit", circuit}};
  }
  const auto s = it->second->status();
  return {{"consuming", s.consuming},
          {"inFlight", s.in_flight},
          {"concurrencyLimit", s.concurrency_limit},
          {"circuit", s.circuit}};
}

}  // namespace sluice::delivery
