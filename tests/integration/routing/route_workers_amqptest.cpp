// Workers resolve their target through the registry, end to end through the real binary, the
// shared RabbitMQ and PostgreSQL: a proxied service whose flavour has a route and no url goes
// where the active route says, follows an update of the url, answers 502 no_route once the
// route is deactivated (within a second, not after the cache's TTL) and goes back to it once it
// is activated again. The target is sluice's own /health.
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "independent_client.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/eventually.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "test_support.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

const std::map<std::string, std::string> json_type{{"Content-Type", "application/json"}};

class route_workers_test : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir buffer_;
  const std::string name_ = "rt-" + std::to_string(::getpid()) + "-" +
                            std::to_string(steady::now().time_since_epoch().count() % 1'000'000);

  ~route_workers_test() override {
    try {
      amqp::test::independent_client admin(amqp::test::broker_url());
      admin.delete_queue("default." + name_ + ".std");
      admin.delete_exchange("default." + name_);
    } catch (const std::exception&) {
    }
  }

  sluice_process::env_map env() {
    return {{"DATABASE_URL", db_.url()},
            {"RABBITMQ_URL", require_env("SLUICE_TEST_AMQP_URL")},
            {"FILE_BUFFER_DIR", buffer_.path()},
            {"SLUICE_ROLES", "ingress,workers"},
            {"LOG_LEVEL", "info"}};
  }

  std::string key_body(const std::string& url = {}) const {
    json j = {{"tenant", "acme"}, {"service", name_}, {"env", "prod"}, {"version", "v1"}};
    if (!url.empty())
      j["url"] = url;
    return j.dump();
  }
};

TEST_F(route_workers_test, a_flavour_follows_its_route_and_stops_using_a_deactivated_one) {
  sluice_process s(env());
  const auto port = s.port();
  const std::string self = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(s.wait_for_log("routes: following changes", 20s)) << s.log();

  ASSERT_EQ(http_call(port, "POST", "/api/v1/routes", key_body(self + "/health"), json_type).status,
            201);
  const json service = {
      {"flavours",
       json::array({{{"name", "std"},
                     {"route", {{"tenant", "acme"}, {"env", "prod"}, {"version", "v1"}}}}})}};
  const auto put = http_call(port, "PUT", "/api/v1/services/" + name_, service.dump(), json_type);
  ASSERT_TRUE(put.status == 201 || put.status == 200) << put.body;
  ASSERT_TRUE(s.wait_for_log("worker: consuming queue=default." + name_ + ".std ", 20s)) << s.log();
  ASSERT_TRUE(s.wait_for_log("proxy: consuming replies", 20s)) << s.log();

  // The route's url + the request's path: <self>/health + /live.
  const auto live = http_call(port, "GET", "/proxy/" + name_ + "/live");
  ASSERT_EQ(live.status, 200) << live.body;
  EXPECT_EQ(live.json(), (json{{"status", "alive"}, {"service", "sluice"}}));

  // A new url: <self>/nothing/live does not exist, so sluice answers 404 through the proxy.
  ASSERT_EQ(http_call(port, "PUT", "/api/v1/routes", key_body(self + "/nothing"), json_type).status,
            200);
  const auto moved = time_until(
      [&] { return http_call(port, "GET", "/proxy/" + name_ + "/live").status == 404; }, 5s);
  ASSERT_TRUE(moved) << s.log();
  EXPECT_LT(*moved, 1s);

  ASSERT_EQ(http_call(port, "POST", "/api/v1/routes/deactivate", key_body(), json_type).status,
            200);
  http_result last;
  const auto stopped = time_until(
      [&] {
        last = http_call(port, "GET", "/proxy/" + name_ + "/live");
        return last.status == 502;
      },
      5s);
  ASSERT_TRUE(stopped) << last.status << " " << last.body;
  std::printf("deactivation reached the workers after %lld ms\n",
              static_cast<long long>(stopped->count()));
  EXPECT_LT(*stopped, 1s);
  EXPECT_EQ(last.json()["error"]["code"], "no_route") << last.body;

  ASSERT_EQ(http_call(port, "PUT", "/api/v1/routes", key_body(self + "/health"), json_type).status,
            200);
  ASSERT_EQ(http_call(port, "POST", "/api/v1/routes/activate", key_body(), json_type).status, 200);
  EXPECT_TRUE(eventually(
      [&] { return http_call(port, "GET", "/proxy/" + name_ + "/live").status == 200; }, 5s));
}

}  // namespace
}  // namespace sluice::test
