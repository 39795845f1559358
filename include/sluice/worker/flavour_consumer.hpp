#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "sluice/amqp/client.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/core/log_throttle.hpp"
#include "sluice/http/client.hpp"
#include "sluice/routing/route_lookup.hpp"
#include "sluice/services/service.hpp"
#include "sluice/worker/batch_assembler.hpp"
#include "sluice/worker/flavour_route.hpp"
#include "sluice/worker/response_sink.hpp"
#include "sluice/worker/target_request.hpp"
#include "sluice/worker/task_group.hpp"
#include "sluice/worker/worker_metrics.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::worker {

// What one consumer needs of its service; two equal configs need no restart.
struct consumer_config {
  std::string service;
  std::string flavour;
  std::string queue;
  std::uint16_t prefetch = 32;
  std::chrono::milliseconds timeout{60'000};  // async requests' deadline
  target_origin target;
  std::string target_error;  // set: the URL in use is unusable, every request gets 502
  std::optional<batch_limits> batch;
  target_origin batch_url;
  // The flavour's route: resolved per request (batch mode: per batch); its active url wins over
  // `target` (batch mode: `batch_url`), which is then the fallback when has_url.
  std::optional<routing::route_key> route;
  bool has_url = true;  // false: a route without a url (no fallback)
  // Declared on every (re)connect, as the ingress declares it.
  std::shared_ptr<const services::service> definition;

  bool same_as(const consumer_config& other) const;
};

// What the readiness check reads of one consumer.
struct consumer_status {
  std::string service;
  std::string flavour;
  std::string queue;
  bool consuming = false;  // basic.consume is active on a live channel
  std::size_t in_flight = 0;
  std::string last_error;  // why the last attempt to consume failed ("" once consuming)
};

// Shared by the consumers of one worker_service.
struct worker_context {
  worker_context(boost::asio::any_io_executor executor, std::shared_ptr<amqp::client> amqp,
                 http::client& http, metrics::registry& registry);

  boost::asio::any_io_executor executor;
  std::shared_ptr<amqp::client> amqp;
  http::client& http;
  response_sink* sink = nullptr;
  routing::route_lookup* routes = nullptr;  // null: no registry, routes never resolve
  worker_metrics metrics;
  std::chrono::milliseconds stop_grace{5'000};
  bool warned_no_sink = false;
};

// The consumer of one flavour queue <namespace>.<service>.<flavour>: on every connection of the
// amqp client it opens a channel of its own, declares the service's topology, sets the prefetch
// to the service's concurrency and consumes. Each delivery is handled in its own coroutine
// (owned here, cancelled at stop): decoded, dropped when its caller already gave up, forwarded
// (or batched), answered on its reply-to on the same channel before the ack (a channel writes
// in order, so the reply is with the broker before the ack), for async requests stored through
// the response_sink before the ack. A lost channel cancels the requests in flight: their
// deliveries can no longer be acked, and the broker hands them to a consumer again.
class flavour_consumer : public std::enable_shared_from_this<flavour_consumer> {
 public:
  using clock = std::chrono::steady_clock;

  // `predecessor`: the consumer this one replaces; it starts consuming once that one finished,
  // so the prefetch bound holds across a restart.
  flavour_consumer(std::shared_ptr<worker_context> context, consumer_config config,
                   std::shared_ptr<flavour_consumer> predecessor);
  ~flavour_consumer();
  flavour_consumer(const flavour_consumer&) = delete;
  flavour_consumer& operator=(const flavour_consumer&) = delete;

  // The consumer's life: returns once it stopped and every request it started has ended.
  boost::asio::awaitable<void> run();
  // Stops consuming; requests in flight get the context's stop_grace, then are cancelled and
  // left unacked (redelivered by the broker).
  void stop();
  // The amqp client's state changed.
  void wake() { event_.notify_all(); }

  boost::asio::awaitable<void> wait_finished();
  bool finished() const { return finished_; }
  consumer_status status() const;
  const consumer_config& config() const { return config_; }

 private:
  boost::asio::awaitable<void> handle(amqp::delivery d);
  boost::asio::awaitable<rpc::rpc_reply> forward(const rpc::rpc_request& request,
                                                 const std::string& correlation_id,
                                                 clock::time_point deadline);
  boost::asio::awaitable<bool> store(const rpc::rpc_request& request, const rpc::rpc_reply& reply);

  std::shared_ptr<worker_context> context_;
  consumer_config config_;
  std::shared_ptr<flavour_consumer> predecessor_;
  consumer_metrics metrics_;
  std::optional<flavour_route> route_;
  std::unique_ptr<batch_assembler> batches_;
  task_group handlers_;
  async_event event_;
  async_event finished_event_;
  bool stopping_ = false;
  bool finished_ = false;
  bool consuming_ = false;
  bool ended_ = false;
  std::size_t in_flight_ = 0;
  clock::time_point stop_deadline_{};
  std::string last_error_;
  log_throttle log_throttle_;
};

}  // namespace sluice::worker
