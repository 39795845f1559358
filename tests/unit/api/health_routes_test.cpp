#include "sluice/api/health_routes.hpp"

#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

namespace sluice::api {
namespace {

std::map<std::string, const http::route_options*> options_by_path(const http::router& routes) {
  std::map<std::string, const http::route_options*> out;
  for (const auto& r : routes.list())
    out[r.method + " " + r.pattern] = r.options;
  return out;
}

TEST(health_routes, probes_and_their_aliases_are_open) {
  metrics::registry metrics;
  readiness ready(metrics);
  http::router routes;
  add_health_routes(routes, ready, metrics);
  const auto by_path = options_by_path(routes);
  for (const char* p : {"GET /health", "GET /health/live", "GET /health/ready", "GET /healthz",
                        "GET /ready", "GET /metrics"}) {
    ASSERT_TRUE(by_path.count(p)) << p;
    EXPECT_EQ(by_path.at(p)->required, http::access::open) << p;
  }
}

TEST(health_routes, metrics_takes_the_access_it_is_given) {
  metrics::registry metrics;
  readiness ready(metrics);
  http::router routes;
  add_health_routes(routes, ready, metrics, http::access::read);
  const auto by_path = options_by_path(routes);
  EXPECT_EQ(by_path.at("GET /metrics")->required, http::access::read);
  EXPECT_EQ(by_path.at("GET /healthz")->required, http::access::open);
}

http::response call(const http::router& routes, const std::string& path) {
  http::request req;
  req.method = "GET";
  req.path = path;
  const auto found = routes.find(req);
  EXPECT_EQ(found.outcome, http::router::match::kind::found) << path;
  if (found.outcome != http::router::match::kind::found)
    return {};
  boost::asio::io_context io;
  auto answer = boost::asio::co_spawn(io, (*found.target)(req), boost::asio::use_future);
  io.run();
  return answer.get();
}

TEST(health_routes, the_aliases_answer_as_live_and_ready) {
  metrics::registry metrics;
  readiness ready(metrics);
  ready.add("postgres", [] {
    check_result down;
    down.detail = "down";
    return down;
  });
  http::router routes;
  add_health_routes(routes, ready, metrics);
  const auto live = call(routes, "/health/live");
  const auto healthz = call(routes, "/healthz");
  EXPECT_EQ(healthz.status, live.status);
  EXPECT_EQ(healthz.body, live.body);
  const auto health_ready = call(routes, "/health/ready");
  const auto alias = call(routes, "/ready");
  EXPECT_EQ(alias.status, health_ready.status);
  EXPECT_EQ(alias.body, health_ready.body);
}

}  // namespace
}  // namespace sluice::api
