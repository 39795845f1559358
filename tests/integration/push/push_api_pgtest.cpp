// POST /api/v1/push against the real binary and a real PostgreSQL: round trip, duplicates,
// validation, limits, QoS0 flushing, status, backpressure.
#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "push_fixture.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

class push_api : public push_fixture {};

TEST_F(push_api, stores_items_and_answers_with_ids_in_request_order) {
  sluice_process s(env());
  wait_ready(s);
  const std::string body = R"({"items":[
    {"queue":"orders","partition":"eu","payload":{ "z" : [1, 2.50], "a" : "é" },"namespace":"shop","task":"ship",
     "traceId":"trace-1","transactionId":"tx-1"},
    {"queue":"orders","payload":"plain"},
    {"queue":"invoices","payload":null}]})";
  auto res = http_call(s.port(), "POST", "/api/v1/push", body);
  ASSERT_EQ(res.status, 201) << res.body;
  const auto out = res.json();
  EXPECT_EQ(out["pushed"], true);
  EXPECT_EQ(out["qos0"], false);
  EXPECT_EQ(out["dbHealthy"], true);
  ASSERT_EQ(out["items"].size(), 3u);
  EXPECT_EQ(out["items"][0]["status"], "stored");
  EXPECT_EQ(out["items"][0]["transactionId"], "tx-1");
  EXPECT_TRUE(out["items"][1]["transactionId"].is_null());

  pg_session pg(db_.url());
  const auto rows = pg.query(
      "SELECT id::text, queue, partition, namespace, task, trace_id, transaction_id, payload::text "
      "FROM sluice_messages ORDER BY id");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(*rows[0][0], out["items"][0]["id"]);
  EXPECT_EQ(*rows[0][1], "orders");
  EXPECT_EQ(*rows[0][2], "eu");
  EXPECT_EQ(*rows[0][3], "shop");
  EXPECT_EQ(*rows[0][4], "ship");
  EXPECT_EQ(*rows[0][5], "trace-1");
  EXPECT_EQ(*rows[0][6], "tx-1");
  EXPECT_EQ(*rows[0][7], R"({ "z" : [1, 2.50], "a" : "é" })") << "payload bytes kept exactly";
  EXPECT_EQ(*rows[1][2], "Default");
  EXPECT_EQ(*rows[1][7], "\"plain\"");
  EXPECT_EQ(*rows[2][7], "null");
  EXPECT_LT(out["items"][0]["id"].get<std::string>(), out["items"][1]["id"].get<std::string>())
      << "uuidv7 ids increase in acceptance order";
}

TEST_F(push_api, a_repeated_transaction_id_is_a_duplicate_with_the_original_id) {
  sluice_process s(env());
  wait_ready(s);
  const std::string one = R"({"items":[{"queue":"q","payload":1,"transactionId":"abc"}]})";
  const auto first = http_call(s.port(), "POST", "/api/v1/push", one).json();
  const auto again = http_call(s.port(), "POST", "/api/v1/push", one).json();
  EXPECT_EQ(again["items"][0]["status"], "duplicate");
  EXPECT_EQ(again["items"][0]["id"], first["items"][0]["id"]);
  // Same id in another queue is another message; twice in one request is a duplicate.
  const auto mixed = http_call(s.port(), "POST", "/api/v1/push",
                               R"({"items":[{"queue":"other","payload":1,"transactionId":"abc"},
                                            {"queue":"other","payload":2,"transactionId":"abc"}]})")
                         .json();
  EXPECT_EQ(mixed["items"][0]["status"], "stored");
  EXPECT_EQ(mixed["items"][1]["status"], "duplicate");
  EXPECT_EQ(mixed["items"][1]["id"], mixed["items"][0]["id"]);
  EXPECT_EQ(count(), "2");
}

TEST_F(push_api, invalid_items_reject_the_whole_request_and_store_nothing) {
  sluice_process s(env());
  wait_ready(s);
  auto res = http_call(
      s.port(), "POST", "/api/v1/push",
      R"({"items":[{"queue":"ok","payload":1},{"queue":"bad queue","payload":2},{"payload":3}]})");
  EXPECT_EQ(res.status, 400);
  const auto err = res.json()["error"];
  EXPECT_EQ(err["code"], "invalid_items");
  ASSERT_EQ(err["items"].size(), 2u);
  EXPECT_EQ(err["items"][0]["index"], 1);
  EXPECT_EQ(err["items"][0]["field"], "queue");
  EXPECT_EQ(err["items"][1]["index"], 2);
  EXPECT_EQ(count(), "0");

  res = http_call(s.port(), "POST", "/api/v1/push", R"({"items":[{"queue":"q","payload":{]}]})");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.json()["error"]["code"], "invalid_json");
  res = http_call(s.port(), "POST", "/api/v1/push", "");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(count(), "0");
}

TEST_F(push_api, limits_on_items_payload_and_body) {
  sluice_process s(env(
      {{"PUSH_MAX_ITEMS", "3"}, {"PUSH_MAX_PAYLOAD_BYTES", "64"}, {"HTTP_MAX_BODY_BYTES", "4k"}}));
  wait_ready(s);
  std::string four = R"({"items":[)";
  for (int i = 0; i < 4; ++i)
    four += std::string(i ? "," : "") + R"({"queue":"q","payload":1})";
  four += "]}";
  EXPECT_EQ(http_call(s.port(), "POST", "/api/v1/push", four).status, 400);
  const std::string big_payload =
      R"({"items":[{"queue":"q","payload":")" + std::string(100, 'x') + R"("}]})";
  auto res = http_call(s.port(), "POST", "/api/v1/push", big_payload);
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.json()["error"]["items"][0]["field"], "payload");
  const std::string huge =
      R"({"items":[{"queue":"q","payload":")" + std::string(5000, 'x') + R"("}]})";
  EXPECT_EQ(http_call(s.port(), "POST", "/api/v1/push", huge).status, 413);
  EXPECT_EQ(count(), "0");
}

TEST_F(push_api, qos0_items_are_answered_at_once_and_flushed_by_time_or_count) {
  sluice_process s(env());
  wait_ready(s);
  // Time trigger: 5 items, bufferMax far away, bufferMs 700.
  std::string five = R"({"bufferMs":700,"bufferMax":1000,"items":[)";
  for (int i = 0; i < 5; ++i)
    five += std::string(i ? "," : "") + R"({"queue":"t","payload":)" + std::to_string(i) + "}";
  five += "]}";
  const auto started = std::chrono::steady_clock::now();
  auto res = http_call(s.port(), "POST", "/api/v1/push", five);
  ASSERT_EQ(res.status, 201) << res.body;
  EXPECT_EQ(res.json()["qos0"], true);
  EXPECT_EQ(res.json()["items"][0]["status"], "buffered");
  EXPECT_EQ(count("queue = 't'"), "0") << "not flushed before bufferMs";
  while (count("queue = 't'") != "5" && std::chrono::steady_clock::now() - started < 10s) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(count("queue = 't'"), "5");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 600ms);

  // Count trigger: bufferMax 10 reached long before a one-minute bufferMs.
  std::string ten = R"({"bufferMs":60000,"bufferMax":10,"items":[)";
  for (int i = 0; i < 10; ++i)
    ten += std::string(i ? "," : "") + R"({"queue":"c","payload":)" + std::to_string(i) + "}";
  ten += "]}";
  const auto t2 = std::chrono::steady_clock::now();
  ASSERT_EQ(http_call(s.port(), "POST", "/api/v1/push", ten).status, 201);
  while (count("queue = 'c'") != "10" && std::chrono::steady_clock::now() - t2 < 10s) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(count("queue = 'c'"), "10");
  EXPECT_LT(std::chrono::steady_clock::now() - t2, 5s);

  // A QoS0 duplicate of a buffered transactionId answers duplicate even before the flush.
  const std::string dup =
      R"({"bufferMs":60000,"bufferMax":1000,"items":[{"queue":"d","payload":1,"transactionId":"x"}]})";
  const auto a = http_call(s.port(), "POST", "/api/v1/push", dup).json();
  const auto b = http_call(s.port(), "POST", "/api/v1/push", dup).json();
  EXPECT_EQ(b["items"][0]["status"], "duplicate");
  EXPECT_EQ(b["items"][0]["id"], a["items"][0]["id"]);
  const auto status = http_call(s.port(), "GET", "/api/v1/status/buffers").json();
  EXPECT_EQ(status["logs"]["qos0"]["pending"], 1);
}

TEST_F(push_api, status_and_metrics_report_the_push_path) {
  sluice_process s(env());
  wait_ready(s);
  http_call(s.port(), "POST", "/api/v1/push",
            R"({"items":[{"queue":"m","payload":1},{"queue":"m","payload":2}]})");
  const auto status = http_call(s.port(), "GET", "/api/v1/status/buffers").json();
  EXPECT_EQ(status["pending"], 0);
  EXPECT_EQ(status["failed"], 0);
  EXPECT_EQ(status["dbHealthy"], true);
  EXPECT_TRUE(status["logs"]["failover"].contains("oldestPendingAgeMs"));
  EXPECT_TRUE(status["logs"]["failover"].contains("replayRatePerSec"));
  const std::string metrics = http_call(s.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("sluice_push_items_total{queue=\"m\",status=\"stored\"} 2\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_db_healthy 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("sluice_buffer_pending_records{log=\"failover\"} 0\n"), std::string::npos);
  EXPECT_NE(metrics.find("sluice_db_insert_duration_seconds_bucket{source=\"push\""),
            std::string::npos);
  temp_dir dir;
  const std::string path = dir.path() + "/m.txt";
  std::ofstream(path) << metrics;
  EXPECT_EQ(std::system(("promtool check metrics < " + path).c_str()), 0);
}

TEST_F(push_api, queue_labels_in_metrics_are_bounded_however_many_queues_clients_invent) {
  sluice_process s(env({{"METRICS_MAX_QUEUE_LABELS", "3"}}));
  wait_ready(s);
  for (int q = 0; q < 10; ++q) {
    const auto res =
        http_call(s.port(), "POST", "/api/v1/push",
                  R"({"items":[{"queue":"q)" + std::to_string(q) + R"(","payload":1}]})");
    ASSERT_EQ(res.status, 201) << res.body;
  }
  const std::string metrics = http_call(s.port(), "GET", "/metrics").body;
  for (const char* kept : {"q0", "q1", "q2"}) {
    EXPECT_NE(metrics.find("sluice_push_items_total{queue=\"" + std::string(kept) +
                           "\",status=\"stored\"} 1\n"),
              std::string::npos)
        << kept << "\n"
        << metrics;
  }
  EXPECT_EQ(metrics.find("queue=\"q3\""), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("sluice_push_items_total{queue=\"(other)\",status=\"stored\"} 7\n"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(count(), "10") << "every message stored, whatever its label";
}

TEST_F(push_api, bodies_declared_as_something_else_than_json_get_415_and_store_nothing) {
  sluice_process s(env());
  wait_ready(s);
  const std::string body = R"({"items":[{"queue":"ct","payload":1}]})";
  // What a browser form or `curl -d` without a header sends: a web page must not be able to
  // push by posting a form.
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"Content-Type", "application/x-www-form-urlencoded"},
           {"Content-Type", "text/plain"},
           {"Content-Encoding", "gzip"}}) {
    const auto res = http_call(s.port(), "POST", "/api/v1/push", body, {{name, value}});
    EXPECT_EQ(res.status, 415) << name << ": " << value;
    EXPECT_EQ(res.json()["error"]["code"], "unsupported_media_type");
  }
  EXPECT_EQ(count(), "0");
  for (const char* json_type : {"application/json; charset=utf-8", "application/vnd.x+json"}) {
    EXPECT_EQ(
        http_call(s.port(), "POST", "/api/v1/push", body, {{"Content-Type", json_type}}).status,
        201)
        << json_type;
  }
  // No Content-Type at all is read as JSON (raw: the test client always sets one).
  const std::string raw = send_raw(s.port(),
                                   "POST /api/v1/push HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                   "Content-Length: " +
                                       std::to_string(body.size()) + "\r\n\r\n" + body,
                                   3s);
  EXPECT_EQ(raw.rfind("HTTP/1.1 201", 0), 0u) << raw;
  EXPECT_EQ(count(), "3");
}

TEST_F(push_api, a_full_push_queue_answers_503_with_retry_after) {
  // A hung PostgreSQL (the proxy stops moving bytes) holds the one connection; the queue bound
  // then turns the next push away at once instead of letting it pile up.
  const std::string admin = require_env("SLUICE_TEST_PG_URL");
  tcp_proxy proxy("127.0.0.1", url_port(admin));
  sluice_process s(env({{"DATABASE_URL", url_with_port(db_.url(), proxy.port())},
                        {"DB_POOL_MAX", "1"},
                        {"PUSH_QUEUE_MAX_ITEMS", "5"},
                        {"DB_STATEMENT_TIMEOUT_MS", "3000"}}));
  wait_ready(s);
  proxy.pause();
  auto one = std::async(std::launch::async, [&] {
    return http_call(s.port(), "POST", "/api/v1/push", R"({"items":[{"queue":"q","payload":1}]})");
  });
  std::this_thread::sleep_for(200ms);
  std::string five = R"({"items":[)";
  for (int i = 0; i < 5; ++i)
    five += std::string(i ? "," : "") + R"({"queue":"q","payload":2})";
  five += "]}";
  auto queued = std::async(std::launch::async,
                           [&] { return http_call(s.port(), "POST", "/api/v1/push", five); });
  std::this_thread::sleep_for(200ms);
  const auto rejected =
      http_call(s.port(), "POST", "/api/v1/push", R"({"items":[{"queue":"q","payload":3}]})");
  EXPECT_EQ(rejected.status, 503) << rejected.body;
  EXPECT_EQ(rejected.json()["error"]["code"], "overloaded");
  EXPECT_EQ(rejected.header("retry-after"), "1");
  proxy.restore();
  // The hung round trip times out; those items fail over to the buffer and are still answered.
  EXPECT_EQ(one.get().status, 201);
  EXPECT_EQ(queued.get().status, 201);
}

TEST_F(push_api, a_round_trip_blocked_on_a_row_lock_does_not_hold_other_pushes_back) {
  sluice_process s(env());
  wait_ready(s);
  // Another transaction holds the idempotency key "held": a push of it waits on the row lock.
  pg_session holder(db_.url());
  holder.query("BEGIN");
  holder.query(
      "INSERT INTO sluice_messages (id, queue, partition, transaction_id, payload, created_at) "
      "VALUES ('01890000-0000-7000-8000-000000000001', 'q', 'Default', 'held', '1', now())");
  auto blocked = std::async(std::launch::async, [&] {
    return http_call(s.port(), "POST", "/api/v1/push",
                     R"({"items":[{"queue":"q","transactionId":"held","payload":2}]})");
  });
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(blocked.wait_for(0s), std::future_status::timeout) << "the push did not block";

  // A push arriving meanwhile gets a round trip of its own instead of queueing behind it.
  const auto started = std::chrono::steady_clock::now();
  const auto other =
      http_call(s.port(), "POST", "/api/v1/push", R"({"items":[{"queue":"q","payload":3}]})");
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(other.status, 201) << other.body;
  EXPECT_EQ(other.json()["items"][0]["status"], "stored") << other.body;
  EXPECT_LT(waited, 1s);
  EXPECT_EQ(blocked.wait_for(0s), std::future_status::timeout);

  holder.query("COMMIT");
  const auto answer = blocked.get();
  EXPECT_EQ(answer.status, 201) << answer.body;
  EXPECT_EQ(answer.json()["items"][0]["status"], "duplicate") << answer.body;
  EXPECT_EQ(answer.json()["items"][0]["id"], "01890000-0000-7000-8000-000000000001");
}

}  // namespace
}  // namespace sluice::test
