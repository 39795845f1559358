// The route events' publication through the real binary, PostgreSQL and RabbitMQ: every change
// reaches a queue bound to sluice.route-events, in registry_version order, as the documented
// JSON; a backlog written while no publisher ran goes out after a restart, without loss and
// without repeating what was published; changes made while the AMQP connection is cut go out
// once it is back; two instances publish each event once.
#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "independent_client.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/eventually.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"
#include "test_support.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using amqp::test::received_message;

const std::map<std::string, std::string> json_type{{"Content-Type", "application/json"}};

// The value of an unlabelled metric in a /metrics text, -1 when absent.
double metric(std::uint16_t port, const std::string& name) {
  const std::string text = http_call(port, "GET", "/metrics").body;
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

class route_events_test : public ::testing::Test {
 protected:
  route_events_test()
      : admin_(amqp::test::broker_url()),
        queue_(amqp::test::unique_name("route-events")),
        tenant_(amqp::test::unique_name("t").substr(0, 60)) {
    admin_.declare_exchange("sluice.route-events", "fanout", true);
    admin_.declare_queue(queue_, false);
    admin_.bind_queue(queue_, "sluice.route-events");
  }
  ~route_events_test() override {
    try {
      admin_.delete_queue(queue_);
    } catch (const std::exception&) {
    }
  }

  sluice_process::env_map env(bool with_rabbitmq, const std::string& buffer = "a") {
    sluice_process::env_map e{{"DATABASE_URL", db_.url()},
                              {"FILE_BUFFER_DIR", dir_.path() + "/buffer-" + buffer}};
    if (with_rabbitmq)
      e["RABBITMQ_URL"] = require_env("SLUICE_TEST_AMQP_URL");
    return e;
  }

  static void wait_schema(const sluice_process& s) {
    ASSERT_TRUE(
        eventually([&] { return http_call(s.port(), "GET", "/api/v1/routes").status == 200; }, 20s))
        << s.log();
  }

  std::string key_body(const std::string& service) const {
    return R"({"tenant":")" + tenant_ + R"(","service":")" + service +
           R"(","env":"prod","version":"v1"})";
  }
  std::string route_body(const std::string& service, const std::string& url) const {
    return R"({"tenant":")" + tenant_ + R"(","service":")" + service +
           R"(","env":"prod","version":"v1","url":")" + url + R"("})";
  }

  // A change of each kind on `service` (5 events), answered with the given statuses.
  void change_all_ways(const sluice_process& s, const std::string& service) {
    const auto port = s.port();
    ASSERT_EQ(
        http_call(port, "POST", "/api/v1/routes", route_body(service, "http://h/1"), json_type)
            .status,
        201);
    ASSERT_EQ(http_call(port, "PUT", "/api/v1/routes", route_body(service, "http://h/2"), json_type)
                  .status,
              200);
    ASSERT_EQ(
        http_call(port, "POST", "/api/v1/routes/deactivate", key_body(service), json_type).status,
        200);
    ASSERT_EQ(
        http_call(port, "POST", "/api/v1/routes/activate", key_body(service), json_type).status,
        200);
    ASSERT_EQ(http_call(port, "DELETE",
                        "/api/v1/routes?tenant=" + tenant_ + "&service=" + service +
                            "&env=prod&version=v1")
                  .status,
              204);
  }

  // This test's messages (other tests may publish to the shared exchange too).
  std::vector<received_message> receive(std::size_t count) {
    std::vector<received_message> out;
    const auto deadline = steady::now() + 20s;
    while (out.size() < count && steady::now() < deadline) {
      for (auto& m : admin_.consume(queue_, count - out.size(), 2s)) {
        if (json::parse(m.body).value("tenant", "") == tenant_)
          out.push_back(std::move(m));
      }
    }
    return out;
  }

  // This test's messages until one of version `last` came (repeats included).
  std::vector<std::int64_t> receive_through(std::int64_t last) {
    std::vector<std::int64_t> out;
    const auto deadline = steady::now() + 30s;
    while ((out.empty() || out.back() != last) && steady::now() < deadline) {
      for (auto& m : admin_.consume(queue_, 1, 2s)) {
        if (json::parse(m.body).value("tenant", "") == tenant_)
          out.push_back(json::parse(m.body)["registry_version"].get<std::int64_t>());
      }
    }
    return out;
  }

  // No further message of this test arrives within a while.
  bool nothing_more() {
    for (const auto& m : admin_.consume(queue_, 100, 1500ms)) {
      if (json::parse(m.body).value("tenant", "") == tenant_)
        return false;
    }
    return true;
  }

  static std::vector<std::int64_t> versions_of(const std::vector<received_message>& messages) {
    std::vector<std::int64_t> out;
    for (const auto& m : messages)
      out.push_back(json::parse(m.body)["registry_version"].get<std::int64_t>());
    return out;
  }

  static std::vector<std::int64_t> one_to(std::int64_t n, std::int64_t from = 1) {
    std::vector<std::int64_t> out;
    for (std::int64_t v = from; v <= n; ++v)
      out.push_back(v);
    return out;
  }

  scoped_database db_;
  temp_dir dir_;
  amqp::test::independent_client admin_;
  std::string queue_;
  std::string tenant_;
};

TEST_F(route_events_test, every_change_arrives_in_order_as_the_documented_json) {
  sluice_process a(env(true));
  wait_schema(a);
  change_all_ways(a, "billing");

  const auto messages = receive(5);
  ASSERT_EQ(versions_of(messages), one_to(5)) << a.log();
  const auto events = http_call(a.port(), "GET", "/api/v1/routes/events").json()["items"];
  ASSERT_EQ(events.size(), 5u);
  const std::vector<std::string> actions{"created", "updated", "deactivated", "activated",
                                         "deleted"};
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    EXPECT_EQ(m.exchange, "sluice.route-events");
    EXPECT_EQ(m.routing_key, actions[i]);
    EXPECT_EQ(m.content_type, std::optional<std::string>("application/json"));
    EXPECT_EQ(m.delivery_mode, std::optional<std::uint8_t>(2));
    EXPECT_EQ(m.message_id, "route-event-" + std::to_string(i + 1));
    // The body is the audit item (the events API answers newest first), keys in this order.
    const auto body = nlohmann::ordered_json::parse(m.body);
    std::vector<std::string> keys;
    for (const auto& [k, v] : body.items())
      keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"id", "registry_version", "action", "tenant",
                                              "service", "env", "version", "before", "after",
                                              "actor", "created_at"}));
    EXPECT_EQ(json::parse(m.body), events[events.size() - 1 - i]) << m.body;
    EXPECT_EQ(body["action"], actions[i]);
  }
  const auto first = json::parse(messages[0].body);
  EXPECT_TRUE(first["before"].is_null());
  EXPECT_EQ(first["after"]["url"], "http://h/1");
  EXPECT_EQ(first["after"]["is_active"], true);
  EXPECT_EQ(first["actor"], "127.0.0.1");
  const auto updated = json::parse(messages[1].body);
  EXPECT_EQ(updated["before"]["url"], "http://h/1");
  EXPECT_EQ(updated["after"]["url"], "http://h/2");
  EXPECT_TRUE(json::parse(messages[4].body)["after"].is_null());

  pg_session pg(db_.url());
  EXPECT_TRUE(eventually(
      [&] {
        return pg.scalar("SELECT count(*) FROM sluice_route_events WHERE published_at IS NULL") ==
               "0";
      },
      5s));
  EXPECT_TRUE(eventually(
      [&] {
        return metric(a.port(), "sluice_route_events_published_total") == 5 &&
               metric(a.port(), "sluice_route_events_unpublished") == 0;
      },
      5s))
      << http_call(a.port(), "GET", "/metrics").body;
}

TEST_F(route_events_test, a_backlog_goes_out_after_a_restart_without_loss_or_repeats) {
  pg_session pg(db_.url());
  {
    // No RabbitMQ: the changes wait in the table.
    sluice_process a(env(false));
    wait_schema(a);
    change_all_ways(a, "search");
  }
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_route_events WHERE published_at IS NULL"), "5");
  {
    sluice_process b(env(true));
    wait_schema(b);
    const auto backlog = receive(5);
    EXPECT_EQ(versions_of(backlog), one_to(5)) << b.log();
    ASSERT_EQ(
        http_call(b.port(), "POST", "/api/v1/routes", route_body("search", "http://h/9"), json_type)
            .status,
        201);
    EXPECT_EQ(versions_of(receive(1)), one_to(6, 6));
    EXPECT_TRUE(eventually(
        [&] {
          return pg.scalar(
                     "SELECT count(*) FROM sluice_route_events WHERE published_at IS "
                     "NULL") == "0";
        },
        5s));
  }
  sluice_process c(env(true));
  wait_schema(c);
  ASSERT_EQ(http_call(c.port(), "POST", "/api/v1/routes/deactivate", key_body("search"), json_type)
                .status,
            200);
  // Only the new one: what b published and marked is not published again.
  EXPECT_EQ(versions_of(receive(1)), one_to(7, 7)) << c.log();
  EXPECT_TRUE(nothing_more());
}

TEST_F(route_events_test, changes_made_while_rabbitmq_is_cut_off_go_out_when_it_is_back) {
  const std::string amqp_url = require_env("SLUICE_TEST_AMQP_URL");
  tcp_proxy proxy("127.0.0.1", url_port(amqp_url));
  auto e = env(true);
  e["RABBITMQ_URL"] = url_with_port(amqp_url, proxy.port());
  sluice_process a(e);
  wait_schema(a);
  ASSERT_EQ(http_call(a.port(), "POST", "/api/v1/routes", route_body("x", "http://h/1"), json_type)
                .status,
            201);
  EXPECT_EQ(versions_of(receive(1)), one_to(1)) << a.log();
  // The message reaches a consumer before its confirm reaches sluice: wait for the mark, or a
  // cut before it would (rightly) publish version 1 again.
  pg_session marks(db_.url());
  ASSERT_TRUE(eventually(
      [&] {
        return marks.scalar(
                   "SELECT count(*) FROM sluice_route_events WHERE published_at IS NULL") == "0";
      },
      5s));

  proxy.cut();
  // Changes made once the client knows the connection is gone (none in flight at the cut).
  ASSERT_TRUE(a.wait_for_log("amqp: connect failed", 10s)) << a.log();
  ASSERT_EQ(
      http_call(a.port(), "PUT", "/api/v1/routes", route_body("x", "http://h/2"), json_type).status,
      200);
  ASSERT_EQ(
      http_call(a.port(), "POST", "/api/v1/routes/deactivate", key_body("x"), json_type).status,
      200);
  ASSERT_EQ(http_call(a.port(), "POST", "/api/v1/routes", route_body("y", "http://h/3"), json_type)
                .status,
            201);
  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_route_events WHERE published_at IS NULL"), "3");
  EXPECT_TRUE(
      eventually([&] { return metric(a.port(), "sluice_route_events_unpublished") == 3; }, 5s));

  proxy.restore();
  EXPECT_EQ(versions_of(receive(3)), one_to(4, 2)) << a.log();
  // At least once: a round the reconnecting publisher lost its connection in (a loaded CI
  // machine) is published again, so a repeat of 2..4 may follow; nothing else may.
  for (const auto& m : admin_.consume(queue_, 100, 1500ms)) {
    const json body = json::parse(m.body);
    if (body.value("tenant", "") != tenant_)
      continue;
    const auto version = body.value("registry_version", std::int64_t{0});
    EXPECT_TRUE(version >= 2 && version <= 4) << m.body;
  }
}

TEST_F(route_events_test, a_cut_while_confirms_are_in_flight_may_repeat_but_never_reorders) {
  const std::string amqp_url = require_env("SLUICE_TEST_AMQP_URL");
  tcp_proxy proxy("127.0.0.1", url_port(amqp_url));
  auto e = env(true);
  e["RABBITMQ_URL"] = url_with_port(amqp_url, proxy.port());
  sluice_process a(e);
  wait_schema(a);
  int changes = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 3; ++i) {
      const auto r = http_call(a.port(), "POST", "/api/v1/routes",
                               route_body("s" + std::to_string(changes), "http://h/"), json_type);
      ASSERT_EQ(r.status, 201) << r.body;
      ++changes;
    }
    proxy.cut();
    std::this_thread::sleep_for(100ms);
    proxy.restore();
  }
  const auto seen = receive_through(changes);
  // What a consumer that keeps the highest version it applied sees: every message is a repeat
  // (at most that version) or the next one; a version is never skipped.
  std::int64_t highest = 0;
  for (const auto v : seen) {
    EXPECT_LE(v, highest + 1) << "skipped a version in " << testing::PrintToString(seen);
    highest = std::max(highest, v);
  }
  EXPECT_EQ(highest, changes) << testing::PrintToString(seen) << a.log();
}

TEST_F(route_events_test, two_instances_publish_each_event_once_in_order) {
  sluice_process a(env(true, "a"));
  sluice_process b(env(true, "b"));
  wait_schema(a);
  wait_schema(b);
  for (int i = 0; i < 6; ++i) {
    const auto& s = i % 2 ? a : b;
    const auto r = http_call(s.port(), "POST", "/api/v1/routes",
                             route_body("svc" + std::to_string(i), "http://h/"), json_type);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  const auto messages = receive(6);
  EXPECT_EQ(versions_of(messages), one_to(6));
  EXPECT_TRUE(nothing_more()) << "an event was published twice";
  EXPECT_TRUE(eventually(
      [&] {
        return metric(a.port(), "sluice_route_events_published_total") +
                   metric(b.port(), "sluice_route_events_published_total") ==
               6;
      },
      5s));
}

}  // namespace
}  // namespace sluice::test
