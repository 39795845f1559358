// The subscription routes' reads from a loaded registry, with the delivery engine's status
// provider, driven through the router without a server or PostgreSQL (the pool never connects:
// these reads do not touch it).
#include "sluice/api/subscription_routes.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace sluice::api {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

delivery::subscription sub(const std::string& queue, const std::string& name) {
  delivery::subscription s;
  s.queue = queue;
  s.name = name;
  s.url = "http://127.0.0.1:9/";
  return s;
}

class subs_routes_test : public ::testing::Test {
 protected:
  subs_routes_test()
      : pool_(io_.get_executor(), pool_options()),
        modes_(pool_),
        catalog_(io_.get_executor(), metrics_, catalog_options()) {}

  static store::pool_options pool_options() {
    store::pool_options o;
    o.connection.conninfo = "host=127.0.0.1 port=1";
    return o;
  }
  static delivery::subscription_catalog_options catalog_options() {
    delivery::subscription_catalog_options o;
    o.pool = pool_options();
    return o;
  }

  http::response call(const std::string& method, const std::string& target) {
    http::request req;
    req.method = method;
    req.target = target;
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos)
      req.query = target.substr(q + 1);
    const auto m = routes_.find(req);
    EXPECT_EQ(m.outcome, http::router::match::kind::found) << method << " " << target;
    http::response out;
    if (!m.target)
      return out;
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          out = co_await (*m.target)(req);
          done = true;
        },
        asio::detached);
    io_.restart();
    while (!done && io_.run_one()) {
    }
    return out;
  }

  asio::io_context io_;
  metrics::registry metrics_;
  store::pg_pool pool_;
  relay::queue_modes modes_;
  delivery::subscription_catalog catalog_;
  http::router routes_;
};

TEST_F(subs_routes_test, get_adds_the_engine_status_where_it_has_one) {
  catalog_.registry().replace_all({sub("orders", "a"), sub("orders", "b"), sub("other", "c")});
  add_subscription_routes(
      routes_, catalog_, modes_,
      [](const std::string& queue, const std::string& name) -> std::optional<json> {
        if (name != "a")
          return std::nullopt;
        return json{{"consuming", true}, {"queue", queue}};
      });
  auto r = call("GET", "/api/v1/queues/orders/subscriptions/a");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["status"], json::parse(R"({"consuming":true,"queue":"orders"})"));
  r = call("GET", "/api/v1/queues/orders/subscriptions/b");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(json::parse(r.body).contains("status"));
  EXPECT_EQ(call("GET", "/api/v1/queues/orders/subscriptions/c").status, 404);
  EXPECT_EQ(call("GET", "/api/v1/queues/orders/subscriptions/a.b").status, 400);
  EXPECT_EQ(call("GET", "/api/v1/queues/bad%20queue/subscriptions/a").status, 400);

  r = call("GET", "/api/v1/queues/orders/subscriptions?limit=1");
  ASSERT_EQ(r.status, 200) << r.body;
  auto page = json::parse(r.body);
  ASSERT_EQ(page["items"].size(), 1u);
  EXPECT_EQ(page["items"][0]["name"], "a");
  r = call("GET",
           "/api/v1/queues/orders/subscriptions?limit=1&cursor=" + page["next"].get<std::string>());
  page = json::parse(r.body);
  ASSERT_EQ(page["items"].size(), 1u);
  EXPECT_EQ(page["items"][0]["name"], "b");
  EXPECT_TRUE(page["next"].is_null());
  EXPECT_EQ(call("GET", "/api/v1/queues/orders/subscriptions?limit=0").status, 400);
}

}  // namespace
}  // namespace sluice::api
