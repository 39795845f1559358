// The dead letter, re-drive and attempt record API through the real binary on a real
// PostgreSQL, with rows written by SQL: list pages and filters, one-row lookups of broadcast
// messages (409 ambiguous), single and bulk re-drive (dry run, rate, resume after kill -9),
// deletion, attempt listings, validation errors and 503 while PostgreSQL is away.
#include <chrono>
#include <functional>
#include <set>
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

// Message ids with n in their last digits: sorted by n.
std::string id_of(int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%012d", n);
  return std::string("01900000-0000-7000-8000-") + buf;
}

class dlq_routes_test : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir dir_;

  sluice_process::env_map env(const std::string& buffer = "a") {
    return {{"DATABASE_URL", db_.url()}, {"FILE_BUFFER_DIR", dir_.path() + "/buffer-" + buffer}};
  }

  static void wait_schema(const sluice_process& s) {
    ASSERT_TRUE(
        eventually([&] { return http_call(s.port(), "GET", "/api/v1/dlq").status == 200; }, 20s))
        << s.log();
  }

  // A dead letter of message n, dead `seconds` after 2026-01-01T00:00:00Z.
  void dead_letter(int n, const std::string& queue, const std::string& subscription,
                   double seconds) {
    // Its subscription, paused: a re-drive into a subscription that does not exist is refused.
    pg_session(db_.url()).query(
        "INSERT INTO sluice_subscriptions (queue, name, spec, paused_at) VALUES ('" + queue +
        "', '" + subscription +
        "', '{\"url\":\"http://127.0.0.1:9/\"}', now()) ON CONFLICT DO NOTHING");
    pg_session(db_.url()).query(
        "INSERT INTO sluice_dead_letters (id, queue, subscription, reason, last_status, "
        "attempts, first_attempt_at, last_attempt_at, response_excerpt, partition, "
        "headers, created_ms, payload, dead_at) VALUES ('" +
        id_of(n) + "', '" + queue + "', '" + subscription +
        "', 'attempts_exhausted', 503, 5, '2025-12-31T23:00:00Z', "
        "'2025-12-31T23:59:00.5Z', 'busy', 'p" +
        std::to_string(n) + "', '{\"queue\":\"" + queue +
        "\"}', 1735689600000, "
        "convert_to('{\"n\": " +
        std::to_string(n) +
        ", \"s\":\"\\u00e9\"}', 'UTF8'), timestamptz '2026-01-01T00:00:00Z' + " +
        std::to_string(seconds) + " * interval '1 second')");
  }

  std::string scalar(const std::string& sql) { return pg_session(db_.url()).scalar(sql); }

  // The ids of every page of `target` (which has its filters and no cursor).
  static std::vector<std::string> walk(std::uint16_t port, const std::string& target) {
    std::vector<std::string> out;
    std::string next;
    for (int pages = 0; pages < 50; ++pages) {
      const std::string sep = target.find('?') == std::string::npos ? "?" : "&";
      const auto r =
          http_call(port, "GET", next.empty() ? target : target + sep + "cursor=" + next);
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200)
        break;
      const auto j = r.json();
      for (const auto& item : j["items"])
        out.push_back(item["id"].get<std::string>() + "/" +
                      item["subscription"].get<std::string>());
      if (j["next"].is_null())
        break;
      next = j["next"].get<std::string>();
    }
    return out;
  }
};

TEST_F(dlq_routes_test, lists_pages_with_filters_in_dead_at_order) {
  sluice_process s(env());
  wait_schema(s);
  for (int n = 1; n <= 5; ++n)
    dead_letter(n, n <= 3 ? "orders" : "invoices", "billing", n);
  dead_letter(3, "orders", "audit", 3);  // broadcast: message 3 failed on two subscriptions

  const auto first = http_call(s.port(), "GET", "/api/v1/dlq?limit=2");
  ASSERT_EQ(first.status, 200) << first.body;
  const auto j = first.json();
  EXPECT_EQ(j["limit"], 2);
  ASSERT_EQ(j["items"].size(), 2u);
  EXPECT_TRUE(j["next"].is_string());
  const json expected = {{"id", id_of(1)},
                         {"queue", "orders"},
                         {"subscription", "billing"},
                         {"reason", "attempts_exhausted"},
                         {"lastStatus", 503},
                         {"attempts", 5},
                         {"firstAttemptAt", "2025-12-31T23:00:00.000Z"},
                         {"lastAttemptAt", "2025-12-31T23:59:00.500Z"},
                         {"responseExcerpt", "busy"},
                         {"partition", "p1"},
                         {"deadAt", "2026-01-01T00:00:01.000Z"}};
  EXPECT_EQ(j["items"][0], expected);

  EXPECT_EQ(walk(s.port(), "/api/v1/dlq?limit=2"),
            (std::vector<std::string>{id_of(1) + "/billing", id_of(2) + "/billing",
                                      id_of(3) + "/audit", id_of(3) + "/billing",
                                      id_of(4) + "/billing", id_of(5) + "/billing"}));
  EXPECT_EQ(walk(s.port(), "/api/v1/dlq?limit=1&queue=orders&subscription=billing"),
            (std::vector<std::string>{id_of(1) + "/billing", id_of(2) + "/billing",
                                      id_of(3) + "/billing"}));
  // RFC 3339 and Unix ms alike; start inclusive, end exclusive.
  EXPECT_EQ(
      walk(s.port(), "/api/v1/dlq?start_time=2026-01-01T00:00:02Z&end_time=1767225604000&limit=10"),
      (std::vector<std::string>{id_of(2) + "/billing", id_of(3) + "/audit",
                                id_of(3) + "/billing"}));
  EXPECT_EQ(
      walk(s.port(),
           "/api/v1/dlq?start_time=2026-01-01T01:00:00%2B01:00&end_time=2026-01-01T00:00:02Z"),
      (std::vector<std::string>{id_of(1) + "/billing"}));

  // A cursor belongs to its filters.
  const auto mismatch = http_call(
      s.port(), "GET", "/api/v1/dlq?queue=invoices&cursor=" + j["next"].get<std::string>());
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_EQ(mismatch.json()["error"]["code"], "cursor_filter_mismatch");
  for (const char* bad :
       {"/api/v1/dlq?limit=0", "/api/v1/dlq?limit=1001", "/api/v1/dlq?limit=x",
        "/api/v1/dlq?cursor=zzz", "/api/v1/dlq?start_time=yesterday",
        "/api/v1/dlq?end_time=2026-01-01",
        "/api/v1/dlq?start_time=2026-01-02T00:00:00Z&end_time=2026-01-01T00:00:00Z",
        "/api/v1/dlq?queue=%FF"}) {
    const auto r = http_call(s.port(), "GET", bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
    EXPECT_TRUE(r.json()["error"]["code"].is_string()) << bad;
  }
}

TEST_F(dlq_routes_test, one_dead_letter_is_read_retried_and_deleted_by_id) {
  sluice_process s(env());
  wait_schema(s);
  dead_letter(1, "orders", "billing", 1);
  dead_letter(2, "orders", "billing", 2);
  dead_letter(2, "orders", "audit", 2);
  const auto port = s.port();

  const auto one = http_call(port, "GET", "/api/v1/dlq/" + id_of(1));
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json()["subscription"], "billing");
  EXPECT_EQ(one.json()["payload"], json::parse(R"({"n": 1, "s":"\u00e9"})"));
  EXPECT_NE(one.body.find(R"("payload":{"n": 1, "s":"\u00e9"})"), std::string::npos)
      << "the payload's bytes as pushed: " << one.body;

  const auto ambiguous = http_call(port, "GET", "/api/v1/dlq/" + id_of(2));
  EXPECT_EQ(ambiguous.status, 409);
  EXPECT_EQ(ambiguous.json()["error"]["code"], "ambiguous");
  EXPECT_EQ(ambiguous.json()["error"]["matches"],
            json::parse(R"([{"queue":"orders","subscription":"audit"},
                            {"queue":"orders","subscription":"billing"}])"));
  EXPECT_EQ(http_call(port, "POST", "/api/v1/dlq/" + id_of(2) + "/retry").status, 409);
  EXPECT_EQ(http_call(port, "DELETE", "/api/v1/dlq/" + id_of(2)).status, 409);
  const auto narrowed =
      http_call(port, "GET", "/api/v1/dlq/" + id_of(2) + "?queue=orders&subscription=audit");
  ASSERT_EQ(narrowed.status, 200) << narrowed.body;
  EXPECT_EQ(narrowed.json()["subscription"], "audit");

  const auto retried =
      http_call(port, "POST", "/api/v1/dlq/" + id_of(2) + "/retry?subscription=audit");
  ASSERT_EQ(retried.status, 202) << retried.body;
  EXPECT_EQ(retried.json()["subscription"], "audit");
  EXPECT_EQ(scalar("SELECT attempt || ',' || origin || ',' || (due_at <= now()) || ',' || "
                   "convert_from(payload, 'UTF8') FROM sluice_delivery_retries WHERE "
                   "message_id = '" +
                   id_of(2) + "' AND subscription = 'audit'"),
            "1,redrive,true,{\"n\": 2, \"s\":\"\\u00e9\"}");
  EXPECT_EQ(http_call(port, "POST", "/api/v1/dlq/" + id_of(2) + "/retry?subscription=audit").status,
            404);
  // Only one row of message 2 is left: the id alone names it now.
  EXPECT_EQ(http_call(port, "DELETE", "/api/v1/dlq/" + id_of(2)).status, 204);
  EXPECT_EQ(http_call(port, "DELETE", "/api/v1/dlq/" + id_of(2)).status, 404);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "1");

  const auto unknown = http_call(port, "GET", "/api/v1/dlq/" + id_of(99));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.json()["error"]["code"], "dead_letter_not_found");
  for (const char* bad : {"/api/v1/dlq/not-a-uuid", "/api/v1/dlq/jobs/nope"}) {
    const auto r = http_call(port, "GET", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.json()["error"]["code"], "invalid_id");
  }
  EXPECT_EQ(http_call(port, "GET", "/api/v1/dlq/jobs/" + id_of(1)).status, 404);
}

TEST_F(dlq_routes_test, bulk_redrive_dry_run_rate_and_validation) {
  sluice_process s(env());
  wait_schema(s);
  for (int n = 1; n <= 30; ++n)
    dead_letter(n, n % 3 ? "orders" : "invoices", "billing", n);
  const auto port = s.port();

  const auto dry = http_call(port, "POST", "/api/v1/dlq/retry",
                             R"({"queue":"orders","dryRun":true})", json_type);
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(dry.json()["matched"], 20);
  const auto dry_job =
      http_call(port, "GET", "/api/v1/dlq/jobs/" + dry.json()["job"].get<std::string>());
  ASSERT_EQ(dry_job.status, 200);
  EXPECT_EQ(dry_job.json()["state"], "done");
  EXPECT_EQ(dry_job.json()["dryRun"], true);
  EXPECT_EQ(dry_job.json()["redriven"], 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "30");

  // 20 rows at 25/s: batches of 5, 200 ms apart: about 0.6 s after the first.
  const auto started = steady::now();
  const auto job = http_call(port, "POST", "/api/v1/dlq/retry",
                             R"({"queue":"orders","start_time":"2026-01-01T00:00:00Z",
                                 "end_time":1767225700000,"ratePerSec":25})",
                             json_type);
  ASSERT_EQ(job.status, 202) << job.body;
  EXPECT_EQ(job.json()["matched"], 20);
  const std::string target = "/api/v1/dlq/jobs/" + job.json()["job"].get<std::string>();
  json progress;
  ASSERT_TRUE(eventually(
      [&] {
        progress = http_call(port, "GET", target).json();
        return progress["state"] == "done";
      },
      20s))
      << progress.dump();
  const auto took = steady::now() - started;
  EXPECT_GE(took, 500ms);
  EXPECT_LE(took, 5s);
  EXPECT_EQ(progress["matched"], 20);
  EXPECT_EQ(progress["redriven"], 20);
  EXPECT_EQ(progress["ratePerSec"], 25);
  EXPECT_EQ(progress["dryRun"], false);
  EXPECT_TRUE(progress["finishedAt"].is_string());
  EXPECT_TRUE(progress["createdAt"].is_string());
  EXPECT_TRUE(progress["updatedAt"].is_string());
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries WHERE origin = 'redrive'"), "20");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "10");
  ASSERT_TRUE(eventually(
      [&] {
        return http_call(port, "GET", "/metrics")
                   .body.find("sluice_dlq_records{queue=\"invoices\"} 10") != std::string::npos;
      },
      15s));

  for (const char* bad :
       {"", "[]", "{\"dryRun\":1}", "{\"ratePerSec\":0}", "{\"ratePerSec\":1.5}",
        "{\"start_time\":\"soon\"}", "{\"queue\":7}", "{\"what\":true}",
        "{\"start_time\":\"2026-01-02T00:00:00Z\",\"end_time\":\"2026-01-01T00:00:00Z\"}"}) {
    const auto r = http_call(port, "POST", "/api/v1/dlq/retry", bad, json_type);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "invalid_body") << bad;
  }
  EXPECT_EQ(
      http_call(port, "POST", "/api/v1/dlq/retry", "{}", {{"Content-Type", "text/plain"}}).status,
      415);
}

TEST_F(dlq_routes_test, a_job_resumes_after_kill_9_without_moving_a_row_twice) {
  std::int64_t at_kill = 0;
  {
    sluice_process a(env("a"));
    wait_schema(a);
    for (int n = 1; n <= 60; ++n)
      dead_letter(n, "orders", n % 2 ? "billing" : "audit", n);
    // 20/s: batches of 4, 200 ms apart, 3 s for all.
    const auto r =
        http_call(a.port(), "POST", "/api/v1/dlq/retry", R"({"ratePerSec":20})", json_type);
    ASSERT_EQ(r.status, 202) << r.body;
    ASSERT_EQ(r.json()["matched"], 60);
    ASSERT_TRUE(eventually(
        [&] { return std::stoll(scalar("SELECT redriven FROM sluice_dlq_jobs")) >= 12; }, 10s))
        << a.log();
    a.kill9();
    at_kill = std::stoll(scalar("SELECT redriven FROM sluice_dlq_jobs"));
  }
  EXPECT_LT(at_kill, 60);
  EXPECT_EQ(scalar("SELECT state FROM sluice_dlq_jobs"), "running");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries"), std::to_string(at_kill))
      << "every committed batch moved exactly what the job counts";

  sluice_process b(env("b"));
  ASSERT_TRUE(
      eventually([&] { return scalar("SELECT state FROM sluice_dlq_jobs") == "done"; }, 20s))
      << b.log();
  EXPECT_EQ(scalar("SELECT matched || '/' || redriven FROM sluice_dlq_jobs"), "60/60");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries"), "60");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "0");
}

TEST_F(dlq_routes_test, lists_the_delivery_attempts_of_a_message_in_time_order) {
  sluice_process s(env());
  wait_schema(s);
  pg_session pg(db_.url());
  pg.query(
      "INSERT INTO sluice_delivery_attempts (message_id, queue, subscription, attempt, "
      "attempted_at, outcome, status, latency_ms, error) VALUES "
      "('" +
      id_of(1) +
      "', 'orders', 'billing', 2, '2026-01-01T00:00:02Z', 'delivered', 200, 3.5, NULL),"
      "('" +
      id_of(1) +
      "', 'orders', 'billing', 1, '2026-01-01T00:00:01Z', 'retry', NULL, 5000, 'timeout'),"
      "('" +
      id_of(1) +
      "', 'orders', 'audit', 1, '2026-01-01T00:00:01Z', 'delivered', 204, 1, NULL),"
      "('" +
      id_of(2) + "', 'orders', 'billing', 1, '2026-01-01T00:00:01Z', 'delivered', 200, 1, NULL)");
  const auto r = http_call(s.port(), "GET", "/api/v1/messages/" + id_of(1) + "/deliveries?limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto j = r.json();
  ASSERT_EQ(j["items"].size(), 2u);
  EXPECT_EQ(j["items"][0]["subscription"], "audit");
  EXPECT_EQ(j["items"][1], json::parse(R"({"attempt":1,"queue":"orders","subscription":"billing",
                            "attemptedAt":"2026-01-01T00:00:01.000Z","outcome":"retry",
                            "status":null,"latencyMs":5000.0,"error":"timeout"})"));
  const auto rest = http_call(s.port(), "GET",
                              "/api/v1/messages/" + id_of(1) +
                                  "/deliveries?limit=2&cursor=" + j["next"].get<std::string>());
  ASSERT_EQ(rest.status, 200) << rest.body;
  ASSERT_EQ(rest.json()["items"].size(), 1u);
  EXPECT_EQ(rest.json()["items"][0]["status"], 200);
  EXPECT_EQ(rest.json()["items"][0]["latencyMs"], 3.5);
  EXPECT_TRUE(rest.json()["next"].is_null());
  const auto other = http_call(
      s.port(), "GET",
      "/api/v1/messages/" + id_of(2) + "/deliveries?cursor=" + j["next"].get<std::string>());
  EXPECT_EQ(other.status, 400) << "a cursor belongs to its message";
  const auto none = http_call(s.port(), "GET", "/api/v1/messages/" + id_of(3) + "/deliveries");
  EXPECT_EQ(none.status, 200);
  EXPECT_TRUE(none.json()["items"].empty());
  EXPECT_EQ(http_call(s.port(), "GET", "/api/v1/messages/x/deliveries").status, 400);
}

TEST_F(dlq_routes_test, answers_503_with_retry_after_while_postgresql_is_away) {
  tcp_proxy proxy("127.0.0.1", url_port(db_.url()));
  auto e = env();
  e["DATABASE_URL"] = url_with_port(db_.url(), proxy.port());
  sluice_process s(e);
  wait_schema(s);
  proxy.cut();
  for (const auto& [method, target] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/api/v1/dlq"},
                                                        {"GET", "/api/v1/dlq/" + id_of(1)},
                                                        {"POST", "/api/v1/dlq/retry"}}) {
    const auto r = http_call(s.port(), method, target, method == "POST" ? "{}" : "", json_type);
    EXPECT_EQ(r.status, 503) << method << " " << target << " " << r.body;
    EXPECT_FALSE(r.header("retry-after").empty());
  }
  proxy.restore();
  EXPECT_TRUE(
      eventually([&] { return http_call(s.port(), "GET", "/api/v1/dlq").status == 200; }, 10s));
}

}  // namespace
}  // namespace sluice::test
