// GET /api/v1/routes/resolve through the router with a fake route_lookup: each answer's code
// and shape (200 url, 404 route_not_found, 400 naming the parameter, 503 with Retry-After).
#include "sluice/api/route_resolve_routes.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::api {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

struct fake_lookup final : routing::route_lookup {
  routing::resolve_outcome next;
  std::vector<routing::route_key> asked;
  asio::awaitable<routing::resolve_outcome> resolve(routing::route_key key) override {
    asked.push_back(std::move(key));
    co_return next;
  }
};

class route_resolve_routes_test : public ::testing::Test {
 protected:
  route_resolve_routes_test() { add_route_resolve_routes(routes_, lookup_, 2); }

  http::response get(const std::string& query) {
    http::request req;
    req.method = "GET";
    req.path = "/api/v1/routes/resolve";
    req.query = query;
    req.target = req.path + "?" + query;
    const auto m = routes_.find(req);
    EXPECT_EQ(m.outcome, http::router::match::kind::found);
    http::response out;
    if (!m.target)
      return out;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { out = co_await (*m.target)(req); }, asio::detached);
    io_.restart();
    io_.run();
    return out;
  }
  static std::string header(const http::response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name)
        return v;
    }
    return {};
  }

  asio::io_context io_;
  fake_lookup lookup_;
  http::router routes_;
};

constexpr const char* full = "tenant=acme&service=orders&env=prod&version=v1";

TEST_F(route_resolve_routes_test, an_active_route_answers_its_url) {
  lookup_.next = {routing::resolve_result::hit, "http://orders:8080/x?a=\"b\"", {}};
  const auto r = get(full);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body), (json{{"url", "http://orders:8080/x?a=\"b\""}}));
  ASSERT_EQ(lookup_.asked.size(), 1u);
  EXPECT_EQ(lookup_.asked[0], (routing::route_key{"acme", "orders", "prod", "v1"}));
}

TEST_F(route_resolve_routes_test, the_url_is_escaped_as_json) {
  const std::string odd = "http://h/\\q\"x\x01\x1f";
  lookup_.next = {routing::resolve_result::hit, odd, {}};
  const auto r = get(full);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["url"], odd) << r.body;
}

TEST_F(route_resolve_routes_test, a_stale_route_answers_its_url_too) {
  lookup_.next = {routing::resolve_result::stale, "http://orders/", {}};
  EXPECT_EQ(get(full).status, 200);
}

TEST_F(route_resolve_routes_test, no_active_route_is_404) {
  for (const auto result : {routing::resolve_result::miss, routing::resolve_result::negative_hit}) {
    lookup_.next = {result, std::nullopt, {}};
    const auto r = get(full);
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "route_not_found");
  }
}

TEST_F(route_resolve_routes_test, unavailable_is_503_with_retry_after) {
  lookup_.next = {routing::resolve_result::unavailable, std::nullopt, "connection refused"};
  const auto r = get(full);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(header(r, "Retry-After"), "2");
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "route_registry_unavailable");
}

TEST_F(route_resolve_routes_test, a_missing_or_invalid_parameter_is_400_naming_it) {
  const auto missing = get("tenant=acme&service=orders&version=v1");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(json::parse(missing.body)["error"]["message"], "env is required");
  const auto empty = get("tenant=&service=orders&env=prod&version=v1");
  EXPECT_EQ(empty.status, 400);
  EXPECT_EQ(json::parse(empty.body)["error"]["message"].get<std::string>().rfind("tenant ", 0), 0u);
  const auto bad = get("tenant=acme&service=or%2Fders&env=prod&version=v1");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["error"]["message"].get<std::string>().rfind("service ", 0), 0u);
  EXPECT_TRUE(lookup_.asked.empty());
}

}  // namespace
}  // namespace sluice::api
