#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "sluice/amqp/client.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/http/message.hpp"
#include "sluice/http/router.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/proxy/async_submitter.hpp"
#include "sluice/proxy/reply_waiters.hpp"
#include "sluice/proxy/rpc_link.hpp"
#include "sluice/services/service.hpp"
#include "sluice/services/service_registry.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::proxy {

struct proxy_options {
  proxy_options() = default;

  reply_waiters::limits limits;  // PROXY_MAX_PENDING, PROXY_MAX_INFLIGHT_BYTES
  int retry_after_seconds = 1;   // of every 503
  rpc_link_options link;
};

// The ingress side of the request proxy: ANY /proxy/{service}/{path*} published to the
// service's exchange and answered with the worker's reply (or 504 at the deadline). See
// add_proxy_routes for the route and README's "Request proxy" for the behaviour.
class proxy_service {
 public:
  using clock = std::chrono::steady_clock;

  proxy_service(boost::asio::any_io_executor executor, services::service_registry& registry,
                std::shared_ptr<amqp::client> client, metrics::registry& metrics,
                proxy_options options);
  ~proxy_service();
  proxy_service(const proxy_service&) = delete;
  proxy_service& operator=(const proxy_service&) = delete;

  // Null: Prefer: respond-async answers 501 async_unavailable.
  void set_async_submitter(async_submitter* submitter) { submitter_ = submitter; }
  void start();
  boost::asio::awaitable<void> stop();

  boost::asio::awaitable<http::response> handle(http::request& req);

  const reply_waiters& waiters() const { return waiters_; }
  const rpc_link& link() const { return *link_; }

 private:
  struct metric_set;
  struct prepared;

  void on_reply(amqp::delivery d);
  boost::asio::awaitable<http::response> handle_sync(http::request& req, prepared& p);
  boost::asio::awaitable<http::response> handle_async(http::request& req, prepared& p,
                                                      std::int64_t wait_seconds);
  // Publishes `request` with `reply` (registered as `w` when not null); an error response
  // when the broker cannot take it now.
  boost::asio::awaitable<std::optional<http::response>> publish(const services::service& s,
                                                                const rpc::rpc_request& request,
                                                                const rpc::reply_address& reply,
                                                                clock::time_point deadline);
  http::response broker_unavailable(std::string_view why) const;
  http::response from_reply(rpc::rpc_reply reply) const;

  boost::asio::any_io_executor executor_;
  services::service_registry& registry_;
  std::shared_ptr<amqp::client> client_;
  proxy_options options_;
  std::unique_ptr<metric_set> metrics_;
  reply_waiters waiters_;
  std::shared_ptr<rpc_link> link_;
  async_submitter* submitter_ = nullptr;
  uuid_v7_generator ids_;
  std::mt19937_64 rng_;
};

// ANY /proxy/{service}/{path*} (every method the server knows, HEAD included), with the
// client watched so that a client that leaves cancels its wait.
void add_proxy_routes(http::router& routes, proxy_service& proxy);

}  // namespace sluice::proxy
