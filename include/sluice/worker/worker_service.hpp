#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/amqp/client.hpp"
#include "sluice/http/client.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/routing/route_lookup.hpp"
#include "sluice/services/service.hpp"
#include "sluice/services/service_registry.hpp"
#include "sluice/worker/flavour_consumer.hpp"
#include "sluice/worker/response_sink.hpp"
#include "sluice/worker/task_group.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::worker {

struct worker_options {
  worker_options() = default;

  services::service_defaults defaults;  // for derived target URLs
  // What flavours with a route resolve through; null: no registry (they get no_route unless
  // they have a url).
  routing::route_lookup* routes = nullptr;
  // At stop, how long requests in flight may take to finish before they are cancelled (left
  // unacked: the broker redelivers them to another worker).
  std::chrono::milliseconds stop_grace{5'000};
};

// The workers role: one flavour_consumer per service and flavour of the registry, following it
// (a service added, changed or removed starts, restarts or stops its consumers; a change of the
// schedule alone restarts nothing). Consumers run on `amqp`'s connection, each on a channel of
// its own; `amqp` must be started by the owner (its publisher is not used: replies go out on the
// consuming channel). Loop-thread only.
class worker_service : public std::enable_shared_from_this<worker_service> {
 public:
  static std::shared_ptr<worker_service> create(boost::asio::any_io_executor executor,
                                                std::shared_ptr<amqp::client> amqp,
                                                services::service_registry& registry,
                                                http::client& http, metrics::registry& metrics,
                                                worker_options options);
  ~worker_service();
  worker_service(const worker_service&) = delete;
  worker_service& operator=(const worker_service&) = delete;

  // Where async responses are stored; without one they are answered on their reply-to only.
  // Set before start() (or later: requests from then on use it).
  void set_response_sink(response_sink* sink);

  // Starts the consumers of every service in the registry and follows it from now on.
  void start();
  // Stops every consumer (requests in flight get stop_grace) and waits until they ended.
  boost::asio::awaitable<void> stop();

  // One entry per consumer, sorted by queue: what /health/ready shows.
  std::vector<consumer_status> status() const;
  // Every consumer is consuming (true with none).
  bool all_consuming() const;

  // What a service's consumers are built from (exposed for tests).
  static std::vector<consumer_config> configs_of(const std::shared_ptr<const services::service>& s,
                                                 const services::service_defaults& d);

 private:
  worker_service(boost::asio::any_io_executor executor, std::shared_ptr<amqp::client> amqp,
                 services::service_registry& registry, http::client& http,
                 metrics::registry& metrics, worker_options options);

  void reconcile(const std::string& service);
  void launch(consumer_config config, std::shared_ptr<flavour_consumer> predecessor);

  std::shared_ptr<worker_context> context_;
  services::service_registry& registry_;
  worker_options options_;
  task_group loops_;
  // (service, flavour) -> its current consumer.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<flavour_consumer>> consumers_;
  bool started_ = false;
  bool stopping_ = false;
};

}  // namespace sluice::worker
