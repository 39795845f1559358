#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/amqp/client.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/delivery/breaker_board.hpp"
#include "sluice/delivery/subscription_consumer.hpp"
#include "sluice/delivery/subscription_registry.hpp"
#include "sluice/http/client.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/relay/queue_modes.hpp"
#include "sluice/worker/task_group.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

namespace sluice::delivery {

struct delivery_service_options {
  delivery_service_options() = default;

  delivery_options delivery;
  breaker_options breaker;  // DELIVERY_BREAKER_FAILURES, DELIVERY_BREAKER_OPEN_MS
  // How often the queues' modes (relay::queue_modes, refreshed by the relay) are compared with
  // what the consumers run in: a queue switched to broadcast moves its subscription to its own
  // queue within this.
  std::chrono::milliseconds mode_check_interval{3'000};
  // What subscriptions with a route resolve through; null: no registry.
  routing::route_lookup* routes = nullptr;
};

// The stores and hooks the consumers use (delivery_context); all optional, see there.
struct delivery_stores {
  retry_store* retries = nullptr;
  dead_letter_store* dead_letters = nullptr;
  subscription_store* subscriptions = nullptr;
  attempt_recorder* recorder = nullptr;
  std::function<void(std::chrono::system_clock::time_point)> on_parked;
};

// The delivery half of the workers role: one subscription_consumer per subscription of the
// registry that is not paused, following it (added or changed: (re)started; removed or paused:
// stopped; a removed broadcast subscription's queue sluice.<queue>~<name> is deleted) and the
// queues' modes (relay::queue_modes: a queue's mode decides which RabbitMQ queue its
// subscriptions consume). Consumers run on `amqp`'s connection, each on a channel of its own;
// the owner starts `amqp`. Nothing starts before the registry and the queue modes were loaded
// once (before that "no subscription" and "queue mode" are unknown). Loop-thread only.
class delivery_service : public std::enable_shared_from_this<delivery_service> {
 public:
  static std::shared_ptr<delivery_service> create(
      boost::asio::any_io_executor executor, std::shared_ptr<amqp::client> amqp,
      subscription_registry& registry, const relay::queue_modes& modes, http::client& http,
      metrics::registry& metrics, delivery_stores stores, delivery_service_options options);
  ~delivery_service();
  delivery_service(const delivery_service&) = delete;
  delivery_service& operator=(const delivery_service&) = delete;

  void start();
  // Stops every consumer (deliveries in flight get stop_grace) and waits until they ended.
  boost::asio::awaitable<void> stop();

  // One entry per consumer, sorted by (queue, name): what /health/ready shows.
  std::vector<consumer_status> status() const;
  // For GET .../subscriptions/{name}: {"consuming","inFlight","concurrencyLimit","circuit"}
  // (consuming false, inFlight 0, concurrencyLimit null when this instance runs no consumer of
  // it, e.g. paused).
  nlohmann::json status_of(std::string_view queue, std::string_view name) const;

  breaker_board& breakers() { return breakers_; }

 private:
  delivery_service(boost::asio::any_io_executor executor, std::shared_ptr<amqp::client> amqp,
                   subscription_registry& registry, const relay::queue_modes& modes,
                   http::client& http, metrics::registry& metrics, delivery_stores stores,
                   delivery_service_options options);

  void reconcile(const std::string& queue, const std::string& name);
  void reconcile_all();
  boost::asio::awaitable<void> follow_modes();
  // The queue of a broadcast subscription removed while no consumer of it ran (paused).
  boost::asio::awaitable<void> delete_queue(std::string queue, std::string name);
  void collect();
  // Also drops the finished consumers of retiring_.
  void forget_unused_breakers();

  metrics::registry& metrics_;
  breaker_board breakers_;
  std::shared_ptr<delivery_context> context_;
  subscription_registry& registry_;
  const relay::queue_modes& modes_;
  delivery_service_options options_;
  worker::task_group loops_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<subscription_consumer>> consumers_;
  // Stopped (paused, removed), not finished yet: the next consumer of the subscription waits
  // for it.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<subscription_consumer>> retiring_;
  std::vector<std::string> gauge_queues_;  // the queues the gauges have series for
  async_event wake_;
  bool started_ = false;
  bool stopping_ = false;
};

}  // namespace sluice::delivery
