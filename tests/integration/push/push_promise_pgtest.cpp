// The push promise ("a 2xx is never lost and never stored twice") at the edges issue #8 found,
// through the real binary and a real PostgreSQL. Each test here failed against commit ac90120
// (run with SLUICE_TEST_BINARY=<that build's sluice>).
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "push_fixture.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

using push_promise = push_fixture;

// Hole 2: one QoS0 push of more items than bufferMax used to store bufferMax of them and leave
// the rest in the buffer until more traffic came.
TEST_F(push_promise, a_qos0_push_larger_than_buffer_max_reaches_postgres_whole) {
  sluice_process s(env());
  wait_ready(s);
  std::string body = R"({"bufferMs":100,"bufferMax":100,"items":[)";
  for (int i = 0; i < 250; ++i)
    body += std::string(i ? "," : "") + R"({"queue":"q0","payload":)" + std::to_string(i) + "}";
  body += "]}";
  const auto res = http_call(s.port(), "POST", "/api/v1/push", body);
  ASSERT_EQ(res.status, 201) << res.body;
  // bufferMs is 100 ms; a few seconds cover a busy machine, and nothing else will wake the
  // replayer: the test must not push again.
  EXPECT_TRUE(wait_count("queue = 'q0'", "250", 5s)) << count("queue = 'q0'") << " of 250 stored";
}

// Hole 4: the repeat of an already stored transactionId inside one request was answered with
// an id minted for it and never stored.
TEST_F(push_promise, every_id_in_an_answer_is_a_stored_message) {
  sluice_process s(env());
  wait_ready(s);
  const auto first = http_call(s.port(), "POST", "/api/v1/push",
                               R"({"items":[{"queue":"r","payload":1,"transactionId":"t"}]})");
  ASSERT_EQ(first.status, 201) << first.body;
  const std::string stored = first.json()["items"][0]["id"];
  const auto twice = http_call(s.port(), "POST", "/api/v1/push",
                               R"({"items":[{"queue":"r","payload":1,"transactionId":"t"},
                             {"queue":"r","payload":1,"transactionId":"t"},
                             {"queue":"r","payload":2,"transactionId":"u"},
                             {"queue":"r","payload":2,"transactionId":"u"}]})");
  ASSERT_EQ(twice.status, 201) << twice.body;
  const auto items = twice.json()["items"];
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0]["id"], stored);
  EXPECT_EQ(items[1]["id"], stored) << "the repeat must name the stored message";
  EXPECT_EQ(items[3]["id"], items[2]["id"]);
  for (const auto& item : items) {
    EXPECT_EQ(count("id = '" + item["id"].get<std::string>() + "'"), "1")
        << item.dump() << " names no stored message";
  }
}

// Hole 5: one row lock held past the statement timeout used to flip every push to the file
// buffer while PostgreSQL was healthy, with the replayer stuck behind the same lock.
TEST_F(push_promise, a_row_lock_past_the_statement_timeout_does_not_fail_over) {
  sluice_process s(env({{"DB_STATEMENT_TIMEOUT_MS", "500"}}));
  wait_ready(s);
  // Another transaction inserts the same (queue, transactionId) and holds it uncommitted: the
  // push's INSERT ... ON CONFLICT waits on that row until its statement timeout.
  pg_session locker(db_.url());
  locker.query("BEGIN");
  locker.query(
      "INSERT INTO sluice_messages (id, queue, partition, transaction_id, payload, created_at) "
      "VALUES (gen_random_uuid(), 'lk', 'Default', 'held', '0', now())");

  const auto blocked =
      http_call(s.port(), "POST", "/api/v1/push",
                R"({"items":[{"queue":"lk","payload":1,"transactionId":"held"}]})");
  EXPECT_EQ(blocked.status, 503) << blocked.body;
  EXPECT_FALSE(blocked.header("retry-after").empty());

  const auto free = http_call(s.port(), "POST", "/api/v1/push",
                              R"({"items":[{"queue":"lk","payload":2,"transactionId":"free"}]})");
  ASSERT_EQ(free.status, 201) << free.body;
  EXPECT_EQ(free.json()["items"][0]["status"], "stored")
      << "a healthy PostgreSQL must keep taking pushes directly";
  const auto st = http_call(s.port(), "GET", "/api/v1/status/buffers").json();
  EXPECT_FALSE(st["failoverActive"].get<bool>()) << st.dump();
  EXPECT_EQ(st["pending"], 0) << st.dump();

  locker.query("ROLLBACK");
  const auto retried =
      http_call(s.port(), "POST", "/api/v1/push",
                R"({"items":[{"queue":"lk","payload":1,"transactionId":"held"}]})");
  ASSERT_EQ(retried.status, 201) << retried.body;
  EXPECT_EQ(count("queue = 'lk'"), "2");
}

}  // namespace
}  // namespace sluice::test
