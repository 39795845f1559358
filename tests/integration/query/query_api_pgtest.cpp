// The query API against the real binary and a real PostgreSQL: pagination edges (empty, last
// page, limit caps, page bounds, time filters, sort), a cursor walk over 10,000 rows while
// inserts continue, tampered and misused cursors, cursors across instances and restarts, the
// partition and queue listings, and one message's publish and delivery state.
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

class query_api : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir buffer_;

  sluice_process::env_map env(sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("FILE_BUFFER_DIR", buffer_.path());
    return extra;
  }

  static void wait_ready(const sluice_process& s) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (http_call(s.port(), "GET", "/health/ready").status == 200) {
        const auto st = http_call(s.port(), "GET", "/api/v1/status/buffers").json();
        if (st["schemaReady"].get<bool>())
          return;
      }
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "sluice did not become ready:\n" << s.log();
  }

  // `n` rows in `queue`, one a second from `base` (SQL timestamptz literal) on, ids uuidv7 of
  // their created_at; partition 'p' || (i % partitions); event_time (when `event_offset` is
  // not empty) = created_at + that interval for every row.
  void insert_rows(const std::string& queue, int n,
                   const std::string& base = "2026-01-01 00:00:00+00", int partitions = 1,
                   const std::string& event_offset = "", const std::string& tag_suffix = "") {
    pg_session pg(db_.url());
    // Ids differ between queues and calls that share times.
    const std::string tag = queue + tag_suffix;
    const std::string event =
        event_offset.empty() ? "NULL::timestamptz" : "t + interval '" + event_offset + "'";
    pg.query(
        "INSERT INTO sluice_messages (id, queue, partition, payload, created_at, event_time) "
        "SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || "
        "substr(md5('" +
        tag + "' || i), 1, 3) || '8' || substr(md5('" + tag + "' || i), 4, 15))::uuid, '" + queue +
        "', 'p' || (i % " + std::to_string(partitions) + "), json_build_object('i', i, 'tag', '" +
        tag + "'), t, " + event + " FROM (SELECT i, timestamptz '" + base +
        "' + i * interval '1 second' AS t FROM generate_series(0, " + std::to_string(n - 1) +
        ") i) s");
  }

  static json get_json(std::uint16_t port, const std::string& target, int expect = 200) {
    const auto r = http_call(port, "GET", target);
    EXPECT_EQ(r.status, expect) << target << " -> " << r.body;
    return r.json();
  }
};

std::string error_code(const json& body) {
  return body.contains("error") ? body["error"]["code"].get<std::string>() : "";
}

TEST_F(query_api, pushed_messages_read_back_as_pushed) {
  sluice_process s(env());
  wait_ready(s);
  const std::string body = R"({"items":[
    {"queue":"telemetry","partition":"dev-1","payload":{ "t" : 21.50, "u":"°C" },"traceId":"tr-1","transactionId":"tx-1"},
    {"queue":"telemetry","partition":"dev-2","payload":[1,  2]},
    {"queue":"telemetry","partition":"dev-1","payload":"plain"}]})";
  const auto pushed = http_call(s.port(), "POST", "/api/v1/push", body);
  ASSERT_EQ(pushed.status, 201) << pushed.body;
  const auto ids = pushed.json()["items"];

  const auto r = http_call(s.port(), "GET", "/api/v1/queues/telemetry/messages");
  ASSERT_EQ(r.status, 200) << r.body;
  // The payload is the JSON text as pushed, spaces and all.
  EXPECT_NE(r.body.find(R"("payload":{ "t" : 21.50, "u":"°C" })"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("payload":[1,  2])"), std::string::npos) << r.body;
  const auto page = r.json();
  EXPECT_EQ(page["total"], 3);
  EXPECT_EQ(page["totalIsEstimate"], false);
  EXPECT_EQ(page["page"], 1);
  EXPECT_EQ(page["limit"], 100);
  EXPECT_TRUE(page["next"].is_null());
  ASSERT_EQ(page["items"].size(), 3u);
  const auto& first = page["items"][0];
  EXPECT_EQ(first["id"], ids[0]["id"]);
  EXPECT_EQ(first["partition"], "dev-1");
  EXPECT_EQ(first["traceId"], "tr-1");
  EXPECT_EQ(first["transactionId"], "tx-1");
  EXPECT_EQ(first["eventTime"], first["createdAt"]) << "no event time: the acceptance time";
  EXPECT_TRUE(page["items"][1]["traceId"].is_null());

  const auto partitions = get_json(s.port(), "/api/v1/queues/telemetry/partitions");
  EXPECT_EQ(partitions["items"], json::array({"dev-1", "dev-2"}));
  EXPECT_EQ(partitions["total"], 2);

  const auto only = get_json(s.port(), "/api/v1/queues/telemetry/messages?partition=dev-1");
  EXPECT_EQ(only["total"], 2);
  EXPECT_EQ(only["items"][1]["payload"], "plain");

  const auto one = get_json(s.port(), "/api/v1/messages/" + ids[1]["id"].get<std::string>());
  EXPECT_EQ(one["queue"], "telemetry");
  EXPECT_EQ(one["partition"], "dev-2");
  EXPECT_EQ(one["payload"], json::array({1, 2}));
  // No RabbitMQ in this test: the relay never confirms, the outbox row stays.
  EXPECT_EQ(one["publish"]["state"], "pending");
  EXPECT_EQ(one["delivery"]["subscriptions"], json::array());

  const auto queues = get_json(s.port(), "/api/v1/queues");
  ASSERT_EQ(queues["items"].size(), 1u) << queues;
  EXPECT_EQ(queues["items"][0]["queue"], "telemetry");
  EXPECT_EQ(queues["items"][0]["total"], 3);
  EXPECT_EQ(queues["items"][0]["unpublished"], 3);
  EXPECT_EQ(queues["items"][0]["deadLettered"], 0);
  EXPECT_EQ(queues["items"][0]["firstEventTime"], first["eventTime"]);
  EXPECT_TRUE(queues["next"].is_null());
}

TEST_F(query_api, an_empty_or_unknown_queue_is_an_empty_page) {
  sluice_process s(env());
  wait_ready(s);
  const auto page = get_json(s.port(), "/api/v1/queues/nothing-here/messages");
  EXPECT_EQ(page["items"], json::array());
  EXPECT_EQ(page["total"], 0);
  EXPECT_EQ(page["page"], 1);
  EXPECT_TRUE(page["next"].is_null());
  const auto partitions = get_json(s.port(), "/api/v1/queues/nothing-here/partitions");
  EXPECT_EQ(partitions["items"], json::array());
  EXPECT_EQ(partitions["total"], 0);
  EXPECT_EQ(get_json(s.port(), "/api/v1/queues")["items"], json::array());
}

TEST_F(query_api, pages_limits_and_the_last_page) {
  sluice_process s(env({{"DEFAULT_PAGE_SIZE", "40"}, {"MAX_PAGE_SIZE", "100"}}));
  wait_ready(s);
  insert_rows("orders", 250);
  const auto deflt = get_json(s.port(), "/api/v1/queues/orders/messages");
  EXPECT_EQ(deflt["limit"], 40);
  EXPECT_EQ(deflt["items"].size(), 40u);
  EXPECT_EQ(deflt["total"], 250);

  std::set<std::string> seen;
  for (int page = 1; page <= 3; ++page) {
    const auto p =
        get_json(s.port(), "/api/v1/queues/orders/messages?limit=100&page=" + std::to_string(page));
    EXPECT_EQ(p["page"], page);
    EXPECT_EQ(p["items"].size(), page < 3 ? 100u : 50u);
    for (const auto& m : p["items"])
      EXPECT_TRUE(seen.insert(m["id"].get<std::string>()).second);
    // Every page offers a cursor to the next, except the last.
    EXPECT_EQ(p["next"].is_null(), page == 3);
  }
  EXPECT_EQ(seen.size(), 250u);
  const auto beyond = get_json(s.port(), "/api/v1/queues/orders/messages?limit=100&page=4");
  EXPECT_EQ(beyond["items"], json::array());
  EXPECT_EQ(beyond["total"], 250);

  // Exactly the setting's cap, then one more.
  EXPECT_EQ(get_json(s.port(), "/api/v1/queues/orders/messages?limit=100")["items"].size(), 100u);
  const auto capped = get_json(s.port(), "/api/v1/queues/orders/messages?limit=101", 400);
  EXPECT_EQ(error_code(capped), "invalid_limit");
  EXPECT_NE(capped["error"]["message"].get<std::string>().find("limit"), std::string::npos);
  // OFFSET is bounded: 10,000 rows at most (page 101 at limit 100).
  EXPECT_EQ(get_json(s.port(), "/api/v1/queues/orders/messages?limit=100&page=101")["items"],
            json::array());
  EXPECT_EQ(
      error_code(get_json(s.port(), "/api/v1/queues/orders/messages?limit=100&page=102", 400)),
      "invalid_parameter");

  // Descending is the same rows backwards.
  const auto asc = get_json(s.port(), "/api/v1/queues/orders/messages?limit=100&page=3");
  const auto desc = get_json(s.port(), "/api/v1/queues/orders/messages?limit=50&sort=desc");
  EXPECT_EQ(desc["items"][0]["id"], asc["items"][49]["id"]);
  EXPECT_EQ(desc["items"][49]["id"], asc["items"][0]["id"]);
}

TEST_F(query_api, bad_parameters_name_themselves) {
  sluice_process s(env());
  wait_ready(s);
  const auto check = [&](const std::string& target, const std::string& code,
                         const std::string& parameter) {
    const auto body = get_json(s.port(), target, 400);
    EXPECT_EQ(error_code(body), code) << target;
    EXPECT_EQ(body["error"]["message"].get<std::string>().rfind(parameter, 0), 0u)
        << target << ": " << body;
  };
  const std::string m = "/api/v1/queues/q/messages?";
  check(m + "limit=0", "invalid_limit", "limit");
  check(m + "limit=abc", "invalid_limit", "limit");
  check(m + "page=0", "invalid_parameter", "page");
  check(m + "page=2&cursor=x", "invalid_parameter", "page");
  check(m + "sort=sideways", "invalid_parameter", "sort");
  check(m + "start_time=yesterday", "invalid_time", "start_time");
  check(m + "end_time=2026-13-01T00:00:00Z", "invalid_time", "end_time");
  check(m + "start_time=2026-02-01T00:00:00Z&end_time=2026-01-01T00:00:00Z", "invalid_time",
        "start_time");
  check(m + "partition=%FF", "invalid_filter", "partition");
  check(m + "cursor=garbage!", "invalid_cursor", "cursor");
  check("/api/v1/queues/q/partitions?sort=x", "invalid_parameter", "sort");
  check("/api/v1/queues?limit=0", "invalid_limit", "limit");
  EXPECT_EQ(error_code(get_json(s.port(), "/api/v1/queues/bad%20name/messages", 400)),
            "invalid_queue");
  EXPECT_EQ(error_code(get_json(s.port(), "/api/v1/messages/not-a-uuid", 400)), "invalid_id");
  EXPECT_EQ(
      error_code(get_json(s.port(), "/api/v1/messages/01890a5d-ac96-774b-bcce-b302099a8057", 404)),
      "message_not_found");
}

TEST_F(query_api, time_filters_are_on_event_time_start_inclusive_end_exclusive) {
  sluice_process s(env());
  wait_ready(s);
  // 100 rows at 00:00:00..00:01:39 without event time, 100 accepted at 10:00 whose event time
  // is 9 h 59 min earlier (00:01:00..00:02:39): the two sets interleave on eventTime.
  insert_rows("sensors", 100, "2026-01-01 00:00:00+00");
  insert_rows("sensors", 100, "2026-01-01 10:00:00+00", 1, "-9 hours -59 minutes", "late");
  const auto all = get_json(s.port(), "/api/v1/queues/sensors/messages?limit=1000");
  ASSERT_EQ(all["items"].size(), 200u);
  std::string previous;
  for (const auto& m : all["items"]) {
    const auto t = m["eventTime"].get<std::string>();
    EXPECT_LE(previous, t) << "sorted by eventTime";
    previous = t;
  }
  const auto late =
      get_json(s.port(),
               "/api/v1/queues/sensors/messages?limit=1000&start_time=2026-01-01T00:01:00Z&"
               "end_time=2026-01-01T00:01:10Z");
  // 00:01:00..00:01:09 of each set: 10 + 10, the end's second itself left out.
  EXPECT_EQ(late["total"], 20);
  ASSERT_EQ(late["items"].size(), 20u);
  EXPECT_EQ(late["items"][0]["eventTime"], "2026-01-01T00:01:00.000Z");
  EXPECT_EQ(late["items"][19]["eventTime"], "2026-01-01T00:01:09.000Z");
  int ingested = 0;
  for (const auto& m : late["items"]) {
    if (m["createdAt"] != m["eventTime"])
      ++ingested;
  }
  EXPECT_EQ(ingested, 10);
  // The same instant in another offset and as Unix ms.
  const auto same = get_json(s.port(),
                             "/api/v1/queues/sensors/messages?limit=1000&start_time=2026-01-01T01:"
                             "01:00%2B01:00&end_time=1767225670000");
  EXPECT_EQ(same["total"], 20);
  const auto none = get_json(s.port(),
                             "/api/v1/queues/sensors/messages?start_time=2026-01-01T00:"
                             "01:00Z&end_time=2026-01-01T00:01:00Z");
  EXPECT_EQ(none["total"], 0);
}

TEST_F(query_api, a_cursor_walk_sees_every_row_once_while_inserts_continue) {
  sluice_process s(env());
  wait_ready(s);
  constexpr int rows = 10'000;
  insert_rows("walk", rows, "2026-01-01 00:00:00+00", 7);
  {
    pg_session pg(db_.url());
    pg.query("ANALYZE sluice_messages");
  }

  // Rows land all over the walked range while it runs: before the cursor, after it, and on
  // its very second (same eventTime, other ids).
  std::atomic<bool> stop{false};
  std::atomic<int> inserted{0};
  std::thread writer([&] {
    pg_session pg(db_.url());
    int batch = 0;
    while (!stop) {
      const std::string tag = "w" + std::to_string(batch++);
      pg.query(
          "INSERT INTO sluice_messages (id, queue, partition, payload, created_at) "
          "SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || "
          "substr(md5('" +
          tag + "' || i), 1, 3) || '8' || substr(md5('" + tag +
          "' || i), 4, 15))::uuid, 'walk', 'p1', '{\"new\":true}', t FROM (SELECT i, "
          "timestamptz '2026-01-01 00:00:00+00' + (random() * " +
          std::to_string(rows) +
          ")::int * interval '1 second' AS t FROM generate_series(1, 20) i) s");
      inserted += 20;
      std::this_thread::sleep_for(2ms);
    }
  });

  std::set<std::string> original_seen;
  std::set<std::string> all_seen;
  std::string cursor;
  std::string last_key;
  int pages = 0;
  json first;
  http_connection conn(s.port());
  for (;;) {
    const std::string target =
        "/api/v1/queues/walk/messages?limit=500&end_time=2026-01-02T00:00:00Z" +
        (cursor.empty() ? std::string() : "&cursor=" + cursor);
    const auto r = conn.request("GET", target);
    ASSERT_EQ(r.status, 200) << r.body;
    const auto page = r.json();
    ++pages;
    if (pages == 1)
      first = page;
    EXPECT_EQ(page["page"], pages);
    EXPECT_EQ(page["total"], first["total"]) << "a walk keeps its first page's total";
    for (const auto& m : page["items"]) {
      const auto id = m["id"].get<std::string>();
      const auto key = m["eventTime"].get<std::string>() + "/" + id;
      EXPECT_LT(last_key, key) << "strictly increasing (eventTime, id): no repeat, no step back";
      last_key = key;
      EXPECT_TRUE(all_seen.insert(id).second) << "repeated " << id;
      if (!m["payload"].contains("new"))
        original_seen.insert(id);
    }
    if (page["next"].is_null())
      break;
    cursor = page["next"].get<std::string>();
    ASSERT_LT(pages, 100) << "the walk does not end";
  }
  stop = true;
  writer.join();
  EXPECT_GT(inserted.load(), 0);
  EXPECT_EQ(original_seen.size(), static_cast<std::size_t>(rows)) << "no gap";
  // Beyond the exact bound the total is the planner's estimate, flagged.
  EXPECT_EQ(first["totalIsEstimate"], true);
  EXPECT_GT(first["total"].get<int>(), 1000);
  EXPECT_GE(pages, rows / 500);
}

TEST_F(query_api, a_tampered_or_reused_cursor_is_refused) {
  sluice_process s(env());
  wait_ready(s);
  insert_rows("orders", 30, "2026-01-01 00:00:00+00", 3);
  const std::string base = "/api/v1/queues/orders/messages?limit=5&partition=p1";
  const auto next = get_json(s.port(), base)["next"].get<std::string>();
  EXPECT_EQ(get_json(s.port(), base + "&cursor=" + next)["page"], 2);
  // Another limit is fine: the cursor is a position, not a page size.
  EXPECT_EQ(get_json(s.port(), base + "&limit=7&cursor=" + next)["items"].size(), 5u);

  for (std::size_t i = 0; i < next.size(); i += 7) {
    std::string edited = next;
    edited[i] = edited[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(error_code(get_json(s.port(), base + "&cursor=" + edited, 400)), "invalid_cursor")
        << i;
  }
  EXPECT_EQ(
      error_code(get_json(s.port(), base + "&cursor=" + next.substr(0, next.size() - 4), 400)),
      "invalid_cursor");
  const auto mismatch = [&](const std::string& target) {
    EXPECT_EQ(error_code(get_json(s.port(), target + "&cursor=" + next, 400)),
              "cursor_filter_mismatch")
        << target;
  };
  mismatch("/api/v1/queues/orders/messages?limit=5&partition=p2");
  mismatch("/api/v1/queues/orders/messages?limit=5");
  mismatch(base + "&sort=desc");
  mismatch(base + "&start_time=2026-01-01T00:00:00Z");
  mismatch(base + "&end_time=2026-01-02T00:00:00Z");
  mismatch("/api/v1/queues/invoices/messages?limit=5&partition=p1");
  mismatch("/api/v1/queues/orders/partitions?limit=5");
}

TEST_F(query_api, cursors_work_on_every_instance_and_after_a_restart) {
  std::string next;
  {
    sluice_process a(env());
    wait_ready(a);
    insert_rows("orders", 30);
    next = get_json(a.port(), "/api/v1/queues/orders/messages?limit=10")["next"];
    temp_dir other_buffer;
    sluice_process b(env({{"FILE_BUFFER_DIR", other_buffer.path()}}));
    wait_ready(b);
    const auto page = get_json(b.port(), "/api/v1/queues/orders/messages?limit=10&cursor=" + next);
    EXPECT_EQ(page["page"], 2);
    EXPECT_EQ(page["items"].size(), 10u);
  }
  sluice_process restarted(env());
  wait_ready(restarted);
  const auto page =
      get_json(restarted.port(), "/api/v1/queues/orders/messages?limit=10&cursor=" + next);
  EXPECT_EQ(page["page"], 2);
}

TEST_F(query_api, partitions_are_listed_by_pages_and_cursor) {
  sluice_process s(env());
  wait_ready(s);
  insert_rows("fleet", 300, "2026-01-01 00:00:00+00", 25);  // p0..p24
  std::vector<std::string> walked;
  std::string cursor;
  for (int page = 1;; ++page) {
    const auto p = get_json(s.port(), "/api/v1/queues/fleet/partitions?limit=10" +
                                          (cursor.empty() ? "" : "&cursor=" + cursor));
    EXPECT_EQ(p["total"], 25);
    EXPECT_EQ(p["page"], page);
    for (const auto& name : p["items"])
      walked.push_back(name);
    if (p["next"].is_null())
      break;
    cursor = p["next"];
  }
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i)
    expected.push_back("p" + std::to_string(i));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(walked, expected);
  const auto third = get_json(s.port(), "/api/v1/queues/fleet/partitions?limit=10&page=3");
  EXPECT_EQ(third["items"].size(), 5u);
  EXPECT_TRUE(third["next"].is_null());
  const auto desc = get_json(s.port(), "/api/v1/queues/fleet/partitions?limit=3&sort=desc");
  EXPECT_EQ(desc["items"], json::array({"p9", "p8", "p7"}));
  const auto desc2 =
      get_json(s.port(), "/api/v1/queues/fleet/partitions?limit=3&sort=desc&cursor=" +
                             desc["next"].get<std::string>());
  EXPECT_EQ(desc2["items"], json::array({"p6", "p5", "p4"}));
}

TEST_F(query_api, the_queue_list_pages_by_name_with_counts) {
  sluice_process s(env());
  wait_ready(s);
  insert_rows("alpha", 3);
  insert_rows("beta", 1200);
  insert_rows("gamma", 2);
  {
    pg_session pg(db_.url());
    pg.query("INSERT INTO sluice_queues (queue, mode) VALUES ('configured-only', 'broadcast')");
    pg.query(
        "INSERT INTO sluice_relay_outbox (id) SELECT id FROM sluice_messages WHERE queue = "
        "'alpha' LIMIT 2");
    pg.query("ANALYZE sluice_messages");
  }
  const auto first = get_json(s.port(), "/api/v1/queues?limit=2");
  ASSERT_EQ(first["items"].size(), 2u);
  EXPECT_EQ(first["items"][0]["queue"], "alpha");
  EXPECT_EQ(first["items"][0]["total"], 3);
  EXPECT_EQ(first["items"][0]["unpublished"], 2);
  EXPECT_EQ(first["items"][0]["firstEventTime"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(first["items"][0]["lastEventTime"], "2026-01-01T00:00:02.000Z");
  EXPECT_EQ(first["items"][1]["queue"], "beta");
  EXPECT_EQ(first["items"][1]["totalIsEstimate"], true) << "1,200 rows: beyond the exact bound";
  EXPECT_GT(first["items"][1]["total"].get<int>(), 1000);
  const auto second =
      get_json(s.port(), "/api/v1/queues?limit=2&cursor=" + first["next"].get<std::string>());
  ASSERT_EQ(second["items"].size(), 2u);
  EXPECT_EQ(second["items"][0]["queue"], "configured-only");
  EXPECT_EQ(second["items"][0]["total"], 0);
  EXPECT_TRUE(second["items"][0]["firstEventTime"].is_null());
  EXPECT_EQ(second["items"][1]["queue"], "gamma");
  EXPECT_TRUE(second["next"].is_null());
}

TEST_F(query_api, a_message_shows_its_publish_and_delivery_state) {
  sluice_process s(env());
  wait_ready(s);
  insert_rows("orders", 1);
  pg_session pg(db_.url());
  const std::string id = pg.scalar("SELECT id FROM sluice_messages");
  pg.query(
      "INSERT INTO sluice_subscriptions (queue, name, spec) VALUES "
      "('orders', 'billing', '{}'), ('orders', 'audit', '{}'), ('orders', 'fresh', '{}')");
  pg.query(
      "INSERT INTO sluice_delivery_attempts (message_id, queue, subscription, attempt, "
      "attempted_at, outcome, status, latency_ms) VALUES "
      "('" +
      id +
      "', 'orders', 'billing', 1, '2026-01-01 00:01:00+00', 'retry', 503, 5), "
      "('" +
      id +
      "', 'orders', 'billing', 2, '2026-01-01 00:02:00+00', 'delivered', 200, 4), "
      "('" +
      id +
      "', 'orders', 'audit', 1, '2026-01-01 00:01:00+00', 'dead_lettered', 400, 3), "
      "('" +
      id + "', 'orders', 'gone', 1, '2026-01-01 00:01:00+00', 'retry', NULL, 3)");
  pg.query(
      "INSERT INTO sluice_dead_letters (id, queue, subscription, reason, last_status, "
      "attempts, first_attempt_at, last_attempt_at, partition, headers, created_ms, payload) "
      "VALUES ('" +
      id +
      "', 'orders', 'audit', 'rejected', 400, 1, now(), now(), 'p0', '{}', "
      "0, '\\x7b7d')");
  pg.query(
      "INSERT INTO sluice_delivery_retries (queue, subscription, message_id, attempt, due_at, "
      "partition, headers, created_ms, payload) VALUES ('orders', 'gone', '" +
      id + "', 2, '2026-01-01 00:05:00+00', 'p0', '{}', 0, '\\x7b7d')");
  const auto m = get_json(s.port(), "/api/v1/messages/" + id);
  EXPECT_EQ(m["publish"]["state"], "published") << "no outbox row";
  const auto& subs = m["delivery"]["subscriptions"];
  ASSERT_EQ(subs.size(), 4u) << m;
  EXPECT_EQ(subs[0]["subscription"], "audit");
  EXPECT_EQ(subs[0]["state"], "dead_lettered");
  EXPECT_EQ(subs[0]["deadLetter"]["reason"], "rejected");
  EXPECT_EQ(subs[1]["subscription"], "billing");
  EXPECT_EQ(subs[1]["state"], "delivered");
  EXPECT_EQ(subs[1]["attempts"], 2);
  EXPECT_EQ(subs[1]["lastStatus"], 200);
  EXPECT_EQ(subs[1]["lastAttemptAt"], "2026-01-01T00:02:00.000Z");
  EXPECT_EQ(subs[2]["subscription"], "fresh");
  EXPECT_EQ(subs[2]["state"], "no_attempts");
  EXPECT_EQ(subs[3]["subscription"], "gone");
  EXPECT_EQ(subs[3]["exists"], false);
  EXPECT_EQ(subs[3]["state"], "retry_scheduled");
  EXPECT_EQ(subs[3]["retry"]["attempt"], 2);
  EXPECT_EQ(subs[3]["retry"]["dueAt"], "2026-01-01T00:05:00.000Z");
  EXPECT_EQ(m["delivery"]["attempts"], "/api/v1/messages/" + id + "/deliveries");

  pg.query("INSERT INTO sluice_relay_outbox (id) VALUES ('" + id + "')");
  EXPECT_EQ(get_json(s.port(), "/api/v1/messages/" + id)["publish"]["state"], "pending");
}

}  // namespace
}  // namespace sluice::test
