// The relay end to end: the real binary, real PostgreSQL, the shared RabbitMQ, and a consumer
// written with node's amqplib, which shares no code with sluice.
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "relay_test_support.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::relay::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using sluice::test::http_call;
using sluice::test::pg_session;
using sluice::test::scoped_database;
using sluice::test::sluice_process;
using sluice::test::temp_dir;
// Every check passing, RabbitMQ included: plain readiness is 200 as soon as pushes are taken.
constexpr const char* strict_ready = "/health/ready?strict=true";

std::string base64_decode(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int bits = 0, value = 0;
  for (char c : in) {
    const auto pos = chars.find(c);
    if (pos == std::string::npos)
      break;
    value = (value << 6) | static_cast<int>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xff));
    }
  }
  return out;
}

class relay_e2e : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir buffer_;
  std::vector<std::string> queues_;

  ~relay_e2e() override {
    for (const auto& q : queues_)
      delete_rabbitmq_objects(amqp_url(), q);
  }

  std::string queue(const std::string& prefix) {
    queues_.push_back(unique_queue(prefix));
    return queues_.back();
  }

  sluice_process::env_map env(sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("RABBITMQ_URL", amqp_url());
    extra.try_emplace("FILE_BUFFER_DIR", buffer_.path());
    extra.try_emplace("RELAY_SWEEP_INTERVAL_MS", "200");
    extra.try_emplace("LOG_LEVEL", "info");
    return extra;
  }

  static void wait_ready(const sluice_process& s) {
    ASSERT_TRUE(
        eventually([&] { return http_call(s.port(), "GET", strict_ready).status == 200; }, 20s))
        << http_call(s.port(), "GET", strict_ready).body << s.log();
  }

  // No row of the queue is left in the relay outbox, and the backlog gauge says so too.
  void expect_all_marked(const sluice_process& s, const std::string& q, std::size_t count) {
    pg_session pg(db_.url());
    const std::string where = "FROM sluice_messages WHERE queue = '" + q + "'";
    // Pushes right after start-up may be answered "buffered" and stored a moment later.
    EXPECT_TRUE(eventually(
        [&] {
          return pg.scalar("SELECT count(*) " + where) == std::to_string(count) &&
                 pg.scalar("SELECT count(*) " + where +
                           " AND id IN (SELECT id FROM sluice_relay_outbox)") == "0";
        },
        20s))
        << s.log();
    EXPECT_TRUE(eventually([&] { return metric(s.port(), "sluice_relay_backlog") == 0.0; }, 10s));
  }
};

TEST_F(relay_e2e, queue_mode_delivers_every_message_with_the_documented_properties) {
  const std::string q = queue("relay.fmt");
  sluice_process s(env());
  wait_ready(s);

  // Every optional field in some items, none in others; payloads whose exact bytes matter.
  const std::vector<std::string> payloads = {R"({"a":1})",
                                             R"({ "spaced" : [1, 2.50, "x"] })",
                                             R"("just a string")",
                                             R"(42)",
                                             R"({"unicode":"Grüße \u00e9 ✓","esc":"a\"b\\c"})",
                                             R"([])",
                                             R"(null)"};
  const int n = 140;
  // Item 2's ids have the longest length a push allows, 256 bytes: one more than AMQP's
  // correlation_id holds (such a message once stopped the relay altogether).
  const auto trace_of = [](int i) {
    return i == 2 ? "trace-" + std::string(250, 'r') : "trace-" + std::to_string(i);
  };
  const auto txn_of = [](int i) {
    return i == 2 ? "txn-" + std::string(252, 't') : "txn-" + std::to_string(i);
  };
  std::string body = R"({"items":[)";
  for (int i = 0; i < n; ++i) {
    body += i ? "," : "";
    // Whitespace around the value is not part of it; inside it, every byte is.
    body += R"({"queue":")" + q + R"(","payload":  )" + payloads[i % payloads.size()] + "  ";
    if (i % 2 == 0) {
      body += R"(,"partition":"eu","namespace":"shop","task":"ship","traceId":")" + trace_of(i) +
              R"(","transactionId":")" + txn_of(i) + "\"";
    }
    body += "}";
  }
  body += "]}";
  const auto pushed = http_call(s.port(), "POST", "/api/v1/push", body);
  ASSERT_EQ(pushed.status, 201) << pushed.body;
  const json items = pushed.json()["items"];
  ASSERT_EQ(items.size(), static_cast<std::size_t>(n));

  expect_all_marked(s, q, n);
  EXPECT_GE(metric(s.port(), "sluice_relay_published_total").value_or(0), n);

  // Declaring with x-queue-type quorum succeeds only if sluice made a quorum queue.
  node_consumer consumer(amqp_url(), {{"queue", "sluice." + q},
                                      {"declare", "quorum"},
                                      {"expect", n},
                                      {"idleMs", 5000},
                                      {"output", "messages"}});
  const auto lines = consumer.finish(30s);
  std::map<std::string, json> by_id;
  for (const auto& l : lines) {
    if (l["event"] == "message")
      by_id[l["properties"]["messageId"].get<std::string>()] = l;
  }
  ASSERT_EQ(by_id.size(), static_cast<std::size_t>(n)) << done_line(lines).dump();
  EXPECT_EQ(done_line(lines)["duplicates"], 0);

  pg_session pg(db_.url());
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  for (int i = 0; i < n; ++i) {
    const std::string id = items[i]["id"];
    ASSERT_TRUE(by_id.count(id)) << "message " << i << " id " << id << " not delivered";
    const json& m = by_id[id];
    const json& p = m["properties"];
    EXPECT_EQ(m["exchange"], "");
    EXPECT_EQ(m["routingKey"], "sluice." + q);
    EXPECT_EQ(base64_decode(m["body"]), payloads[i % payloads.size()]) << "body of item " << i;
    EXPECT_EQ(p["contentType"], "application/json");
    EXPECT_EQ(p["deliveryMode"], 2);
    const auto created_s = std::stoll(
        pg.scalar("SELECT floor(extract(epoch FROM created_at)) FROM sluice_messages WHERE id = '" +
                  id + "'"));
    EXPECT_EQ(p["timestamp"].get<long long>(), created_s);
    EXPECT_LE(std::abs(p["timestamp"].get<long long>() - now_s), 120);
    const json& h = p["headers"];
    EXPECT_EQ(h["queue"], q);
    if (i % 2 == 0) {
      if (i == 2)
        EXPECT_TRUE(!p.contains("correlationId") || p["correlationId"].is_null()) << p.dump();
      else
        EXPECT_EQ(p["correlationId"], txn_of(i));
      EXPECT_EQ(h["transactionId"], txn_of(i));
      EXPECT_EQ(h["partition"], "eu");
      EXPECT_EQ(h["namespace"], "shop");
      EXPECT_EQ(h["task"], "ship");
      EXPECT_EQ(h["traceId"], trace_of(i));
    } else {
      EXPECT_FALSE(p.contains("correlationId") && !p["correlationId"].is_null()) << p.dump();
      EXPECT_FALSE(h.contains("transactionId"));
      EXPECT_EQ(h["partition"], "Default");
      EXPECT_FALSE(h.contains("namespace"));
      EXPECT_FALSE(h.contains("task"));
      EXPECT_FALSE(h.contains("traceId"));
    }
  }
}

TEST_F(relay_e2e, broadcast_mode_delivers_every_message_to_every_subscriber) {
  const std::string q = queue("relay.bcast");
  sluice_process s(env());
  wait_ready(s);

  const auto put = http_call(s.port(), "PUT", "/api/v1/queues/" + q, R"({"mode":"broadcast"})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.json(), json({{"queue", q}, {"mode", "broadcast"}}));

  const int n = 300;
  const json config = {
      {"bindExchange", "sluice." + q}, {"expect", n}, {"idleMs", 8000}, {"output", "messages"}};
  node_consumer first(amqp_url(), config);
  node_consumer second(amqp_url(), config);

  const auto ids = push_items(s.port(), q, n, 50);
  expect_all_marked(s, q, n);

  for (auto* c : {&first, &second}) {
    const auto lines = c->finish(30s);
    std::set<std::string> got;
    for (const auto& l : lines) {
      if (l["event"] != "message")
        continue;
      got.insert(l["properties"]["messageId"].get<std::string>());
      EXPECT_EQ(l["exchange"], "sluice." + q);
      EXPECT_EQ(l["properties"]["deliveryMode"], 2);
      EXPECT_EQ(l["properties"]["headers"]["queue"], q);
    }
    EXPECT_EQ(got, std::set<std::string>(ids.begin(), ids.end()));
    EXPECT_EQ(done_line(lines)["duplicates"], 0);
  }
}

TEST_F(relay_e2e, queue_settings_api_validates_and_persists) {
  const std::string q = queue("relay.api");
  sluice_process s(env({{"RABBITMQ_URL", ""}}));
  const auto port = s.port();

  auto got = http_call(port, "GET", "/api/v1/queues/" + q);
  ASSERT_TRUE(eventually(
      [&] {
        got = http_call(port, "GET", "/api/v1/queues/" + q);
        return got.status == 200;  // 503 until the migrations ran
      },
      20s))
      << got.body;
  EXPECT_EQ(got.json(), json({{"queue", q}, {"mode", "queue"}, {"configured", false}}));

  auto put = http_call(port, "PUT", "/api/v1/queues/" + q, R"({"mode":"broadcast"})");
  EXPECT_EQ(put.status, 200) << put.body;
  got = http_call(port, "GET", "/api/v1/queues/" + q);
  EXPECT_EQ(got.json(), json({{"queue", q}, {"mode", "broadcast"}, {"configured", true}}));
  put = http_call(port, "PUT", "/api/v1/queues/" + q, R"({"mode":"queue"})");
  EXPECT_EQ(put.status, 200);
  EXPECT_EQ(http_call(port, "GET", "/api/v1/queues/" + q).json()["mode"], "queue");

  const auto error_code = [](const sluice::test::http_result& r) {
    return r.json()["error"]["code"].get<std::string>();
  };
  auto bad = http_call(port, "PUT", "/api/v1/queues/" + q, R"({"mode":"fanout"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(error_code(bad), "invalid_request");
  bad = http_call(port, "PUT", "/api/v1/queues/" + q, R"({"mode":"queue","extra":1})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(error_code(bad), "invalid_request");
  bad = http_call(port, "PUT", "/api/v1/queues/" + q, R"(["queue"])");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(error_code(bad), "invalid_request");
  bad = http_call(port, "PUT", "/api/v1/queues/" + q, R"({"mode":)");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(error_code(bad), "invalid_json");
  bad = http_call(port, "PUT", "/api/v1/queues/bad%20name", R"({"mode":"queue"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(error_code(bad), "invalid_queue");
  bad = http_call(port, "GET", "/api/v1/queues/" + std::string(129, 'a'));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(error_code(bad), "invalid_queue");
  EXPECT_EQ(http_call(port, "GET", "/api/v1/queues/a%3Ab").status, 200) << "percent-decoded";
  EXPECT_EQ(http_call(port, "DELETE", "/api/v1/queues/" + q).status, 405);

  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT mode FROM sluice_queues WHERE queue = '" + q + "'"), "queue");
}

TEST_F(relay_e2e, readiness_and_metrics_report_the_broker) {
  sluice_process s(env());
  wait_ready(s);
  const json ready = http_call(s.port(), "GET", "/health/ready").json();
  EXPECT_EQ(ready["checks"]["rabbitmq"]["ok"], true) << ready.dump();
  EXPECT_EQ(ready["checks"]["rabbitmq"]["detail"], "connected");
  EXPECT_EQ(metric(s.port(), "sluice_amqp_connected"), 1.0);
  EXPECT_EQ(metric(s.port(), "sluice_amqp_blocked"), 0.0);
  for (const char* name :
       {"sluice_relay_published_total", "sluice_relay_nacked_total", "sluice_relay_returned_total",
        "sluice_relay_failed_total", "sluice_relay_deferred_total", "sluice_relay_swept_total",
        "sluice_relay_confirm_latency_seconds_count", "sluice_relay_backlog",
        "sluice_relay_backlog_oldest_age_seconds", "sluice_relay_queue_items",
        "sluice_amqp_reconnects_total"}) {
    EXPECT_TRUE(metric(s.port(), name).has_value()) << name;
  }
  const temp_dir dir;
  const std::string path = dir.path() + "/metrics.txt";
  std::ofstream(path) << http_call(s.port(), "GET", "/metrics").body;
  EXPECT_EQ(std::system(("promtool check metrics < " + path).c_str()), 0);

  // --check-config shows the broker URL without its password.
  const auto checked = sluice::test::run_sluice(
      {"--check-config"}, {{"RABBITMQ_URL", "amqp://user:s3cret@rabbit:5672/vh"}});
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_EQ(checked.output.find("s3cret"), std::string::npos) << checked.output;
  EXPECT_NE(checked.output.find("RABBITMQ_URL"), std::string::npos);
  const auto tls =
      sluice::test::run_sluice({"--check-config"}, {{"RABBITMQ_URL", "amqps://rabbit:5671/"}});
  EXPECT_EQ(tls.exit_code, 0) << tls.output;
  const auto refused =
      sluice::test::run_sluice({"--check-config"}, {{"RABBITMQ_URL", "http://rabbit:5671/"}});
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  // The whole URL is parsed, not just its scheme; the message names the variable and the part.
  const auto bad_port = sluice::test::run_sluice(
      {"--check-config"}, {{"RABBITMQ_URL", "amqp://user:s3cret@rabbit:99999/vh"}});
  EXPECT_EQ(bad_port.exit_code, 2) << bad_port.output;
  EXPECT_NE(bad_port.output.find("RABBITMQ_URL"), std::string::npos) << bad_port.output;
  EXPECT_NE(bad_port.output.find("port"), std::string::npos) << bad_port.output;
  EXPECT_EQ(bad_port.output.find("s3cret"), std::string::npos) << bad_port.output;
}

TEST_F(relay_e2e, without_rabbitmq_url_messages_are_stored_and_not_published) {
  const std::string q = queue("relay.off");
  sluice_process s(env({{"RABBITMQ_URL", ""}}));
  EXPECT_TRUE(s.wait_for_log("RABBITMQ_URL is empty", 10s)) << s.log();
  ASSERT_TRUE(
      eventually([&] { return http_call(s.port(), "GET", strict_ready).status == 200; }, 20s));
  EXPECT_FALSE(http_call(s.port(), "GET", "/health/ready").json()["checks"].contains("rabbitmq"));
  // Once ready, pushes go straight to PostgreSQL (not through the file buffer).
  std::string body = R"({"items":[)";
  for (int i = 0; i < 10; ++i)
    body += std::string(i ? "," : "") + R"({"queue":")" + q + R"(","payload":)" +
            std::to_string(i) + "}";
  body += "]}";
  const auto res = http_call(s.port(), "POST", "/api/v1/push", body);
  ASSERT_EQ(res.status, 201) << res.body;
  const json answer = res.json();
  EXPECT_EQ(answer["dbHealthy"], true) << res.body;
  for (const auto& item : answer["items"])
    EXPECT_EQ(item["status"], "stored") << res.body;
  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_messages m JOIN sluice_relay_outbox o ON "
                      "o.id = m.id WHERE m.queue = '" +
                      q + "'"),
            "10");
}

}  // namespace
}  // namespace sluice::relay::test
