// The subscriptions API through the real binary on a real PostgreSQL: CRUD with defaults and
// masked secrets, list pages, validation errors, the queue-mode 409s, resume, two instances
// following each other, and 503 while PostgreSQL is away.
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/eventually.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

const std::map<std::string, std::string> json_type{{"Content-Type", "application/json"}};
constexpr const char* secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

class subs_api_test : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir dir_;

  sluice_process::env_map env(sluice_process::env_map extra = {}, const std::string& buffer = "a") {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("FILE_BUFFER_DIR", dir_.path() + "/buffer-" + buffer);
    extra.try_emplace("CONCURRENCY_PER_QUEUE", "12");
    return extra;
  }

  static void wait_following(const sluice_process& s) {
    ASSERT_TRUE(s.wait_for_log("subscriptions loaded", 20s))
        << "the follower did not load sluice_subscriptions:\n"
        << s.log();
  }

  static http_result put(std::uint16_t port, const std::string& target, const std::string& body) {
    return http_call(port, "PUT", target, body, json_type);
  }
  static std::string sub_path(const std::string& queue, const std::string& name) {
    return "/api/v1/queues/" + queue + "/subscriptions/" + name;
  }
};

TEST_F(subs_api_test, creates_replaces_reads_lists_and_deletes) {
  sluice_process a(env());
  wait_following(a);
  const std::string body =
      std::string(
          R"({"url":"http://127.0.0.1:9/hook?x=1","headers":{"Authorization":"Bearer t"},"secrets":[")") +
      secret + R"("]})";
  auto created = put(a.port(), sub_path("orders", "billing"), body);
  ASSERT_EQ(created.status, 201) << created.body;
  auto j = created.json();
  EXPECT_EQ(j["queue"], "orders");
  EXPECT_EQ(j["name"], "billing");
  EXPECT_EQ(j["url"], "http://127.0.0.1:9/hook?x=1");
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["timeoutMs"], 30000);
  EXPECT_EQ(j["concurrency"], 12);  // CONCURRENCY_PER_QUEUE
  EXPECT_EQ(j["retry"],
            json::parse(R"({"maxAttempts":10,"initialBackoffMs":1000,"maxBackoffMs":300000})"));
  EXPECT_EQ(j["rateLimitPerSec"], 0);
  EXPECT_TRUE(j["batch"].is_null());
  EXPECT_EQ(j["ordering"], "none");
  EXPECT_EQ(j["secrets"], json::array({"whsec_\u2026LaSw"}));
  EXPECT_EQ(j["paused"], false);
  EXPECT_TRUE(j["pausedReason"].is_null());
  EXPECT_EQ(j["updatedAt"].get<std::string>().back(), 'Z');
  EXPECT_EQ(created.body.find("GKYqrTwjUPD8"), std::string::npos) << "secret echoed";

  auto replaced = put(
      a.port(), sub_path("orders", "billing"),
      R"({"url":"http://127.0.0.1:9/v2","timeoutMs":5000,"batch":{"url":"http://127.0.0.1:9/b"}})");
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  auto got = http_call(a.port(), "GET", sub_path("orders", "billing"));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.json()["timeoutMs"], 5000);
  EXPECT_EQ(got.json()["batch"],
            json::parse(R"({"maxItems":100,"maxWaitMs":100,"url":"http://127.0.0.1:9/b"})"));
  EXPECT_EQ(got.json()["secrets"], json::array());
  EXPECT_FALSE(got.json().contains("status")) << "no delivery engine status without a provider";

  // Stored with the full secret, for the delivery engine.
  pg_session pg(db_.url());
  put(a.port(), sub_path("orders", "billing"), body);
  EXPECT_NE(
      pg.scalar("SELECT spec::text FROM sluice_subscriptions WHERE name = 'billing'").find(secret),
      std::string::npos);

  // A list in pages (a broadcast queue, so it can have several).
  ASSERT_EQ(put(a.port(), "/api/v1/queues/events", R"({"mode":"broadcast"})").status, 200);
  for (const char* name : {"c", "a", "b"})
    ASSERT_EQ(put(a.port(), sub_path("events", name), R"({"url":"http://127.0.0.1:9/"})").status,
              201);
  auto page = http_call(a.port(), "GET", "/api/v1/queues/events/subscriptions?limit=2");
  ASSERT_EQ(page.status, 200) << page.body;
  auto pj = page.json();
  EXPECT_EQ(pj["limit"], 2);
  ASSERT_EQ(pj["items"].size(), 2u);
  EXPECT_EQ(pj["items"][0]["name"], "a");
  EXPECT_EQ(pj["items"][1]["name"], "b");
  ASSERT_TRUE(pj["next"].is_string());
  const std::string cursor = pj["next"];
  auto rest =
      http_call(a.port(), "GET", "/api/v1/queues/events/subscriptions?limit=2&cursor=" + cursor);
  ASSERT_EQ(rest.status, 200) << rest.body;
  EXPECT_EQ(rest.json()["items"].size(), 1u);
  EXPECT_EQ(rest.json()["items"][0]["name"], "c");
  EXPECT_TRUE(rest.json()["next"].is_null());
  // A cursor of another queue's list is refused.
  auto wrong = http_call(a.port(), "GET", "/api/v1/queues/orders/subscriptions?cursor=" + cursor);
  EXPECT_EQ(wrong.status, 400) << wrong.body;
  auto orders = http_call(a.port(), "GET", "/api/v1/queues/orders/subscriptions");
  EXPECT_EQ(orders.json()["items"].size(), 1u);

  EXPECT_EQ(http_call(a.port(), "DELETE", sub_path("orders", "billing")).status, 204);
  auto again = http_call(a.port(), "DELETE", sub_path("orders", "billing"));
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(again.json()["error"]["code"], "subscription_not_found");
  EXPECT_EQ(http_call(a.port(), "GET", sub_path("orders", "billing")).status, 404);
}

TEST_F(subs_api_test, refuses_invalid_definitions_with_the_field) {
  sluice_process a(env());
  wait_following(a);
  struct row {
    std::string target;
    std::string body;
    std::string field;
  };
  const std::vector<row> rows = {
      {sub_path("orders", "x"), "{", "body"},
      {sub_path("orders", "x"), R"({"url":"http://h/","retries":3})", "retries"},
      {sub_path("orders", "x"), R"({"url":"https://h/"})", "url"},
      {sub_path("orders", "x"), R"({"url":"http://h/","headers":{"X-Sluice-Queue":"q"}})",
       "headers.X-Sluice-Queue"},
      {sub_path("orders", "x"), R"({"url":"http://h/","secrets":["whsec_short"]})", "secrets[0]"},
      {sub_path("orders", "x"), R"({"url":"http://h/","retry":{"maxAttempts":0}})",
       "retry.maxAttempts"},
      {sub_path("orders", "x"), R"({"url":"http://h/","batch":{"maxItems":5}})", "batch.url"},
      {sub_path("orders", "a.b"), R"({"url":"http://h/"})", "name"},
  };
  for (const auto& r : rows) {
    const auto res = put(a.port(), r.target, r.body);
    EXPECT_EQ(res.status, 400) << r.body << " " << res.body;
    const auto j = json::parse(res.body, nullptr, false);
    EXPECT_EQ(j["error"]["code"], "invalid_subscription") << res.body;
    EXPECT_EQ(j["error"]["field"], r.field) << res.body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  const auto https = put(a.port(), sub_path("orders", "x"), R"({"url":"https://h/"})");
  EXPECT_NE(https.body.find("https targets are not supported yet"), std::string::npos)
      << https.body;
  const auto bad_queue =
      put(a.port(), "/api/v1/queues/a%2Fb/subscriptions/x", R"({"url":"http://h/"})");
  EXPECT_EQ(bad_queue.status, 400);
  EXPECT_EQ(bad_queue.json()["error"]["code"], "invalid_queue");
  const auto not_json = http_call(a.port(), "PUT", sub_path("orders", "x"),
                                  R"({"url":"http://h/"})", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(not_json.status / 100, 4);
  EXPECT_EQ(
      http_call(a.port(), "GET", "/api/v1/queues/orders/subscriptions").json()["items"].size(), 0u);
}

TEST_F(subs_api_test, a_queue_mode_queue_takes_one_subscription_and_no_ordering) {
  sluice_process a(env());
  wait_following(a);
  const std::string url = R"({"url":"http://127.0.0.1:9/"})";
  ASSERT_EQ(put(a.port(), sub_path("orders", "one"), url).status, 201);
  // DELIVERY_MODE (queue by default) applies to a queue without a row.
  auto second = put(a.port(), sub_path("orders", "two"), url);
  EXPECT_EQ(second.status, 409) << second.body;
  EXPECT_EQ(second.json()["error"]["code"], "subscription_conflict");
  EXPECT_EQ(second.json()["error"]["subscription"], "one");
  auto ordered = put(a.port(), sub_path("orders", "one"),
                     R"({"url":"http://127.0.0.1:9/","ordering":"partition"})");
  EXPECT_EQ(ordered.status, 409) << ordered.body;
  EXPECT_EQ(ordered.json()["error"]["code"], "ordering_needs_broadcast");

  ASSERT_EQ(put(a.port(), "/api/v1/queues/orders", R"({"mode":"broadcast"})").status, 200);
  EXPECT_EQ(put(a.port(), sub_path("orders", "two"), url).status, 201);
  EXPECT_EQ(put(a.port(), sub_path("orders", "one"),
                R"({"url":"http://127.0.0.1:9/","ordering":"partition"})")
                .status,
            200);
  auto back = put(a.port(), "/api/v1/queues/orders", R"({"mode":"queue"})");
  EXPECT_EQ(back.status, 409) << back.body;
  EXPECT_EQ(back.json()["error"]["code"], "subscription_conflict");
  EXPECT_EQ(http_call(a.port(), "GET", "/api/v1/queues/orders").json()["mode"], "broadcast");
  ASSERT_EQ(http_call(a.port(), "DELETE", sub_path("orders", "two")).status, 204);
  back = put(a.port(), "/api/v1/queues/orders", R"({"mode":"queue"})");
  EXPECT_EQ(back.status, 409) << back.body;
  EXPECT_EQ(back.json()["error"]["code"], "ordering_needs_broadcast");
  ASSERT_EQ(put(a.port(), sub_path("orders", "one"), url).status, 200);
  EXPECT_EQ(put(a.port(), "/api/v1/queues/orders", R"({"mode":"queue"})").status, 200);

  // With DELIVERY_MODE=broadcast a queue without a row takes several.
  sluice_process b(env({{"DELIVERY_MODE", "broadcast"}}, "b"));
  wait_following(b);
  EXPECT_EQ(put(b.port(), sub_path("fanout", "x"), url).status, 201);
  EXPECT_EQ(put(b.port(), sub_path("fanout", "y"), url).status, 201);
}

TEST_F(subs_api_test, a_pause_is_visible_and_resume_clears_it_on_every_instance) {
  sluice_process a(env());
  sluice_process b(env({}, "b"));
  wait_following(a);
  wait_following(b);
  ASSERT_EQ(put(b.port(), sub_path("orders", "hook"), R"({"url":"http://127.0.0.1:9/"})").status,
            201);
  const auto start = steady::now();
  ASSERT_TRUE(eventually(
      [&] { return http_call(a.port(), "GET", sub_path("orders", "hook")).status == 200; }, 1s));
  std::printf(
      "a PUT on b was visible on a after %lld ms\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count()));

  // The delivery engine pauses on a 410 through the store; here the same row change by hand.
  pg_session pg(db_.url());
  pg.query(
      "UPDATE sluice_subscriptions SET paused_at = now(), paused_reason = 'gone: 410 Gone', "
      "updated_at = now() WHERE queue = 'orders' AND name = 'hook'");
  ASSERT_TRUE(eventually(
      [&] {
        const auto r = http_call(a.port(), "GET", sub_path("orders", "hook"));
        return r.status == 200 && r.json()["paused"] == true &&
               r.json()["pausedReason"] == "gone: 410 Gone";
      },
      1s));
  // A PUT redefines, it does not resume.
  auto redefined = put(a.port(), sub_path("orders", "hook"), R"({"url":"http://127.0.0.1:9/x"})");
  EXPECT_EQ(redefined.json()["paused"], true) << redefined.body;

  auto resumed = http_call(b.port(), "POST", sub_path("orders", "hook") + "/resume");
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(resumed.json()["paused"], false);
  EXPECT_TRUE(resumed.json()["pausedReason"].is_null());
  EXPECT_TRUE(eventually(
      [&] {
        return http_call(a.port(), "GET", sub_path("orders", "hook")).json()["paused"] == false;
      },
      1s));
  EXPECT_EQ(http_call(a.port(), "POST", sub_path("orders", "nothing") + "/resume").status, 404);

  ASSERT_EQ(http_call(a.port(), "DELETE", sub_path("orders", "hook")).status, 204);
  EXPECT_TRUE(eventually(
      [&] { return http_call(b.port(), "GET", sub_path("orders", "hook")).status == 404; }, 1s));
}

TEST_F(subs_api_test, answers_503_while_postgresql_is_away) {
  tcp_proxy proxy("127.0.0.1", url_port(db_.url()));
  proxy.cut();
  sluice_process a(env({{"DATABASE_URL", url_with_port(db_.url(), proxy.port())}}));
  for (const auto& [method, target, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"PUT", sub_path("orders", "x"), R"({"url":"http://127.0.0.1:9/"})"},
           {"GET", sub_path("orders", "x"), ""},
           {"GET", "/api/v1/queues/orders/subscriptions", ""},
           {"DELETE", sub_path("orders", "x"), ""},
           {"POST", sub_path("orders", "x") + "/resume", ""}}) {
    const auto r = http_call(a.port(), method, target, body, json_type);
    EXPECT_EQ(r.status, 503) << method << " " << target << " " << r.body;
    EXPECT_FALSE(r.header("retry-after").empty()) << method << " " << target;
  }
  proxy.restore();
  wait_following(a);
  EXPECT_TRUE(eventually(
      [&] {
        return put(a.port(), sub_path("orders", "x"), R"({"url":"http://127.0.0.1:9/"})").status ==
               201;
      },
      10s));
}

}  // namespace
}  // namespace sluice::test
