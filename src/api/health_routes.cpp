#include "sluice/api/health_routes.hpp"

namespace sluice::api {

void add_health_routes(http::router& routes, const readiness& ready,
                       const metrics::registry& metrics, http::access metrics_access) {
  // Probes answer without a token: orchestrators and load balancers have none.
  const auto open = http::needs(http::access::open);
  const http::handler live = [](http::request&) -> boost::asio::awaitable<http::response> {
    co_return http::response::json(200, R"({"status":"alive","service":"sluice"})");
  };
  const http::handler ready_handler =
      [&ready](http::request& req) -> boost::asio::awaitable<http::response> {
    const auto strict = req.query_param("strict");
    if (strict && *strict != "true" && *strict != "false") {
      co_return http::error_response(400, "invalid_request", "strict must be true or false");
    }
    co_return ready.respond(strict && *strict == "true");
  };
  // The seed's shapes: clients of the route control plane check these bodies.
  routes.add(
      "GET", "/health", "/health",
      [](http::request&) -> boost::asio::awaitable<http::response> {
        co_return http::response::json(200, R"({"status":"healthy","service":"sluice"})");
      },
      open);
  routes.add("GET", "/health/live", "/health/live", live, open);
  routes.add("GET", "/health/ready", "/health/ready", ready_handler, open);
  // The names Kubernetes examples and the seed's probes use.
  routes.add("GET", "/healthz", "/healthz", live, open);
  routes.add("GET", "/ready", "/ready", ready_handler, open);
  routes.add(
      "GET", "/metrics", "/metrics",
      [&metrics](http::request&) -> boost::asio::awaitable<http::response> {
        co_return http::response::text(200, "text/plain; version=0.0.4; charset=utf-8",
                                       metrics.expose());
      },
      http::needs(metrics_access));
}

}  // namespace sluice::api
