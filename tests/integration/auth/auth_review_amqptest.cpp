// Review of the auth merge through the real binary: names a token's prefixes do not cover
// that are still read or used, and sluice's token reaching a proxied target. Each test fails on
// the code as merged (ebf01b7). PostgreSQL and RabbitMQ (proxy, workers, deliveries) are real.
#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "sluice/auth/token_table.hpp"
#include "sluice/http/router.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/loop_thread.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::auth::review {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using json = nlohmann::json;
using sluice::test::http_call;
using sluice::test::http_result;
using sluice::test::sluice_process;
using clock = std::chrono::steady_clock;
using headers = std::map<std::string, std::string>;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto until = clock::now() + limit;
  while (clock::now() < until) {
    if (condition())
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

std::string hex_sha(const std::string& token) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : sha256_of(token)) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

constexpr const char* admin_token = "rv-admin-5c1e0f";        // admin, every name
constexpr const char* tele_writer = "rv-tele-writer-9a7d";    // write, tele-*
constexpr const char* tele_admin = "rv-tele-admin-44b2";      // admin, tele-*
constexpr const char* other_writer = "rv-other-writer-0e6c";  // write, other-*
constexpr const char* other_reader = "rv-other-reader-7f31";  // read, other-*

json entry(const std::string& name, const std::string& token, const std::string& role,
           std::vector<std::string> prefixes = {}) {
  json e = {{"name", name}, {"sha256", hex_sha(token)}, {"roles", {role}}};
  if (!prefixes.empty())
    e["prefixes"] = prefixes;
  return e;
}

headers bearer(const std::string& token) {
  return {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}};
}

// A target for the proxy and for deliveries: answers 200 and records what it got.
class target_server {
 public:
  explicit target_server(test::loop_thread& loop) : loop_(loop) {
    const http::handler h = [this](http::request& req) -> asio::awaitable<http::response> {
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(req);
      }
      co_return http::response::json(200, R"({"ok":true})");
    };
    for (const char* m : {"GET", "POST"})
      routes_.add(m, "/{rest*}", "any", h);
    http::server_options o;
    o.name = "target";
    server_ = std::make_unique<http::server>(loop_.io().get_executor(), o, routes_, metrics_);
    port_ = server_->listen("127.0.0.1", 0);
    server_->start();
  }
  ~target_server() {
    loop_.run([](http::server& s) -> asio::awaitable<void> {
      co_await s.shutdown(std::chrono::milliseconds(0));
    }(*server_));
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<http::request> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  test::loop_thread& loop_;
  metrics::registry metrics_;
  http::router routes_;
  std::unique_ptr<http::server> server_;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::vector<http::request> seen_;
};

class auth_review : public ::testing::Test {
 protected:
  sluice::test::scoped_database db_;
  sluice::test::temp_dir dir_;
  std::string tokens_path_ = dir_.path() + "/tokens.json";
  std::string tag_ = std::to_string(::getpid());

  void SetUp() override {
    std::ofstream(tokens_path_) << json{{"tokens",
                                         {entry("admin", admin_token, "admin"),
                                          entry("tele-writer", tele_writer, "write", {"tele-"}),
                                          entry("tele-admin", tele_admin, "admin", {"tele-"}),
                                          entry("other-writer", other_writer, "write", {"other-"}),
                                          entry("other-reader", other_reader, "read", {"other-"})}}}
                                       .dump();
  }

  sluice_process::env_map env() {
    return {{"DATABASE_URL", db_.url()},
            {"RABBITMQ_URL", sluice::test::require_env("SLUICE_TEST_AMQP_URL")},
            {"FILE_BUFFER_DIR", dir_.path() + "/buffer"},
            {"SLUICE_ROLES", "ingress,workers"},
            {"LOG_LEVEL", "info"},
            {"AUTH_TOKENS_FILE", tokens_path_}};
  }

  static void wait_ready(const sluice_process& s) {
    ASSERT_TRUE(eventually(
        [&] {
          return http_call(s.port(), "GET", "/api/v1/routes", "", bearer(admin_token)).status ==
                 200;
        },
        30s))
        << s.log();
  }

  // A proxied service pointing at `target`, consumed by this instance's workers.
  static void put_service(const sluice_process& s, const std::string& service,
                          const target_server& target) {
    const auto put = http_call(
        s.port(), "PUT", "/api/v1/services/" + service,
        json{{"defaultFlavour", "std"}, {"flavours", {{{"name", "std"}, {"url", target.url()}}}}}
            .dump(),
        bearer(admin_token));
    ASSERT_TRUE(put.status == 201 || put.status == 200) << put.status << " " << put.body;
    ASSERT_TRUE(s.wait_for_log("worker: consuming queue=default." + service + ".std ", 20s))
        << s.log();
    ASSERT_TRUE(s.wait_for_log("proxy: consuming replies", 20s)) << s.log();
  }
};

// GET /api/v1/requests/{id} needs write but judges no name: a writer limited to other-* reads
// the reply a tele-* service gave a tele-* caller (the target's whole response).
TEST_F(auth_review, async_request_polling_checks_the_service_against_the_prefixes) {
  test::loop_thread loop;
  target_server target(loop);
  sluice_process s(env());
  wait_ready(s);
  const std::string service = "tele-async-" + tag_;
  put_service(s, service, target);

  http_result accepted;
  ASSERT_TRUE(eventually(
      [&] {
        accepted = http_call(s.port(), "POST", "/proxy/" + service + "/private", R"({"q":1})",
                             {{"Content-Type", "application/json"},
                              {"Prefer", "respond-async"},
                              {"Proxy-Authorization", std::string("Bearer ") + tele_writer}});
        return accepted.status == 202;
      },
      20s))
      << accepted.status << " " << accepted.body;
  const std::string id = accepted.json()["id"];
  // The owner sees it done.
  http_result mine;
  ASSERT_TRUE(eventually(
      [&] {
        mine = http_call(s.port(), "GET", "/api/v1/requests/" + id, "", bearer(tele_writer));
        return mine.status == 200 && mine.json()["status"] == "done";
      },
      20s))
      << mine.status << " " << mine.body;

  const auto theirs =
      http_call(s.port(), "GET", "/api/v1/requests/" + id, "", bearer(other_writer));
  EXPECT_EQ(theirs.status, 403) << "a writer limited to other-* read the reply of " << service
                                << ": " << theirs.body;
}

// GET /api/v1/messages/{id}/deliveries needs read but judges no name: a reader limited to
// other-* reads the delivery attempts (queue, subscription, status, error text) of a tele-*
// queue.
TEST_F(auth_review, delivery_attempts_check_the_queue_against_the_prefixes) {
  test::loop_thread loop;
  target_server target(loop);
  sluice_process s(env());
  wait_ready(s);
  const std::string queue = "tele-dq-" + tag_;
  const auto sub = http_call(s.port(), "PUT", "/api/v1/queues/" + queue + "/subscriptions/hook",
                             json{{"url", target.url() + "/hook"}}.dump(), bearer(admin_token));
  ASSERT_TRUE(sub.status == 201 || sub.status == 200) << sub.status << " " << sub.body;

  http_result pushed;
  ASSERT_TRUE(eventually(
      [&] {
        pushed =
            http_call(s.port(), "POST", "/api/v1/push",
                      json{{"items", {{{"queue", queue}, {"payload", {{"secret", 42}}}}}}}.dump(),
                      bearer(admin_token));
        return pushed.status == 201;
      },
      20s))
      << pushed.status << " " << pushed.body;
  const std::string id = pushed.json()["items"][0]["id"];
  ASSERT_TRUE(eventually(
      [&] {
        const auto r = http_call(s.port(), "GET", "/api/v1/messages/" + id + "/deliveries", "",
                                 bearer(admin_token));
        return r.status == 200 && !r.json()["items"].empty();
      },
      30s))
      << s.log();

  const auto theirs = http_call(s.port(), "GET", "/api/v1/messages/" + id + "/deliveries", "",
                                bearer(other_reader));
  EXPECT_EQ(theirs.status, 403) << "a reader limited to other-* read the attempts on " << queue
                                << ": " << theirs.body;
}

// A subscription names a route whose service (by default the subscription's name) is where
// its messages go. An admin limited to tele-* may aim a tele-* queue at billing's route, which
// a route change of its own would be refused (route changes and resolve check key.service).
TEST_F(auth_review, a_subscription_route_names_a_service_the_prefixes_must_cover) {
  sluice_process s(env());
  wait_ready(s);
  const std::string queue = "tele-sr-" + tag_;
  const auto explicit_service = http_call(
      s.port(), "PUT", "/api/v1/queues/" + queue + "/subscriptions/feed",
      json{{"route",
            {{"tenant", "acme"}, {"service", "billing"}, {"env", "prod"}, {"version", "v1"}}}}
          .dump(),
      bearer(tele_admin));
  EXPECT_EQ(explicit_service.status, 403) << explicit_service.body;
  const auto default_service =
      http_call(s.port(), "PUT", "/api/v1/queues/" + queue + "-2/subscriptions/billing",
                json{{"route", {{"tenant", "acme"}, {"env", "prod"}, {"version", "v1"}}}}.dump(),
                bearer(tele_admin));
  EXPECT_EQ(default_service.status, 403) << default_service.body;
  // For comparison: the same admin may not touch billing's route itself.
  const auto route = http_call(s.port(), "POST", "/api/v1/routes",
                               json{{"tenant", "acme"},
                                    {"service", "billing"},
                                    {"env", "prod"},
                                    {"version", "v1"},
                                    {"url", "http://127.0.0.1:9/"}}
                                   .dump(),
                               bearer(tele_admin));
  EXPECT_EQ(route.status, 403) << route.body;
}

// GET /api/v1/dlq/{id} judges the dead letter's queue only once one row is found: with rows on
// several subscriptions it answers 409 listing each queue and subscription first, to a reader
// whose prefixes cover none of them.
TEST_F(auth_review, an_ambiguous_dead_letter_is_judged_before_its_subscriptions_are_named) {
  sluice_process s(env());
  wait_ready(s);
  const std::string queue = "tele-orders-" + tag_;
  const std::string id = "01900000-0000-7000-8000-000000000002";
  for (const char* sub : {"billing", "audit"}) {
    sluice::test::pg_session(db_.url()).query(
        "INSERT INTO sluice_dead_letters (id, queue, subscription, reason, last_status, "
        "attempts, first_attempt_at, last_attempt_at, response_excerpt, partition, "
        "headers, created_ms, payload, dead_at) VALUES ('" +
        id + "', '" + queue + "', '" + sub +
        "', 'attempts_exhausted', 503, 5, now(), now(), 'busy', 'p', '{}', "
        "1735689600000, convert_to('{}', 'UTF8'), now())");
  }
  const auto theirs = http_call(s.port(), "GET", "/api/v1/dlq/" + id, "", bearer(other_reader));
  EXPECT_EQ(theirs.status, 403) << theirs.body;
  EXPECT_EQ(theirs.body.find("billing"), std::string::npos) << theirs.body;
}

// The lists that name no queue are not filtered by the prefixes (README: "Lists that name no
// queue (routes, services, the buffer status) are not filtered"), so a reader limited to
// other-* reads every tele-* service definition (its flavours' upstream URLs) and every tele-*
// route (its URL) and route event (who changed it). The issue's prefixes limit queue and
// service names on every read; a list should hold only covered names.
TEST_F(auth_review, lists_hold_only_the_names_the_prefixes_cover) {
  test::loop_thread loop;
  target_server target(loop);
  sluice_process s(env());
  wait_ready(s);
  const std::string service = "tele-listed-" + tag_;
  const auto put = http_call(
      s.port(), "PUT", "/api/v1/services/" + service,
      json{{"defaultFlavour", "std"}, {"flavours", {{{"name", "std"}, {"url", target.url()}}}}}
          .dump(),
      bearer(admin_token));
  ASSERT_TRUE(put.status == 201 || put.status == 200) << put.status << " " << put.body;
  const auto route = http_call(s.port(), "POST", "/api/v1/routes",
                               json{{"tenant", "acme"},
                                    {"service", service},
                                    {"env", "prod"},
                                    {"version", "v1"},
                                    {"url", "http://10.1.2.3:8443/internal"}}
                                   .dump(),
                               bearer(admin_token));
  ASSERT_EQ(route.status, 201) << route.body;
  for (const char* list : {"/api/v1/services", "/api/v1/routes", "/api/v1/routes/events"}) {
    const auto r = http_call(s.port(), "GET", list, "", bearer(other_reader));
    EXPECT_TRUE(r.status == 403 || (r.status == 200 && r.body.find(service) == std::string::npos))
        << list << " as a reader limited to other-*: " << r.status << " " << r.body;
  }
}

// METRICS_AUTH=1 says "/metrics needs read"; with no token source configured the authenticator
// is off and /metrics answers anyone, without a word in the log. A setting that closes
// something must not silently leave it open: refuse the start (or answer 401).
TEST_F(auth_review, metrics_auth_without_any_token_source_does_not_leave_metrics_open) {
  sluice_process::env_map e = {{"DATABASE_URL", db_.url()},
                               {"FILE_BUFFER_DIR", dir_.path() + "/buffer-m"},
                               {"LOG_LEVEL", "info"},
                               {"METRICS_AUTH", "1"}};
  try {
    sluice_process s(e);
    const auto r = http_call(s.port(), "GET", "/metrics");
    EXPECT_NE(r.status, 200) << "METRICS_AUTH=1 and /metrics is open: " << r.body.substr(0, 200);
  } catch (const std::exception& refused) {
    SUCCEED() << "refused to start: " << refused.what();
  }
}

// A request-target without its leading slash ("proxy/svc/x") is routed to the proxy, but the
// authenticator decides by req.path.starts_with("/proxy/") and reads Authorization there: the
// request is authorized by sluice's token in Authorization, and that token is forwarded to the
// target, the one thing Proxy-Authorization exists to prevent.
TEST_F(auth_review, a_target_without_leading_slash_neither_skips_proxy_authorization_nor_leaks) {
  test::loop_thread loop;
  target_server target(loop);
  sluice_process s(env());
  wait_ready(s);
  const std::string service = "tele-slash-" + tag_;
  put_service(s, service, target);
  // The proper form works (the worker is up).
  ASSERT_TRUE(eventually(
      [&] {
        return http_call(s.port(), "GET", "/proxy/" + service + "/x", "",
                         {{"Proxy-Authorization", std::string("Bearer ") + tele_writer}})
                   .status == 200;
      },
      20s));

  const std::string raw = "GET proxy/" + service +
                          "/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + tele_writer +
                          "\r\nConnection: close\r\n\r\n";
  const std::string answer = sluice::test::send_raw(s.port(), raw, 10s);
  EXPECT_FALSE(answer.starts_with("HTTP/1.1 200")) << answer;
  for (const auto& req : target.seen()) {
    EXPECT_NE(req.header("Authorization").value_or(""), std::string("Bearer ") + tele_writer)
        << "sluice's token reached the target";
  }
}

}  // namespace
}  // namespace sluice::auth::review
