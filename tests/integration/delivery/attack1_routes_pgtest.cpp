// attack1: findings of the attack review of issue #10's delivery API, through the real binary
// on a real PostgreSQL. Each test failed before its fix (see the commit that added it).
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/eventually.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

class attack1_routes_test : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir dir_;

  sluice_process::env_map env() {
    return {{"DATABASE_URL", db_.url()}, {"FILE_BUFFER_DIR", dir_.path() + "/buffer"}};
  }

  static void wait_schema(const sluice_process& s) {
    ASSERT_TRUE(
        eventually([&] { return http_call(s.port(), "GET", "/api/v1/dlq").status == 200; }, 20s))
        << s.log();
  }

  std::string scalar(const std::string& sql) { return pg_session(db_.url()).scalar(sql); }

  static http_result put(std::uint16_t port, const std::string& target, const std::string& body) {
    return http_call(port, "PUT", target, body, {{"Content-Type", "application/json"}});
  }
};

// The dead letter of a deleted subscription: a re-drive would write a retry row nobody claims
// (and housekeeping deletes), so it is refused with a 409 and the dead letter stays.
TEST_F(attack1_routes_test, a_redrive_into_a_deleted_subscription_is_409_and_keeps_the_row) {
  sluice_process s(env());
  wait_schema(s);
  const std::string id = "01900000-0000-7000-8000-000000000001";
  pg_session(db_.url()).query(
      "INSERT INTO sluice_dead_letters (id, queue, subscription, reason, attempts, "
      "first_attempt_at, last_attempt_at, partition, headers, created_ms, payload) VALUES ('" +
      id + "', 'orders', 'deleted', 'rejected', 1, now(), now(), 'p', '{}', 1, '\\x7b7d')");
  const auto r = http_call(s.port(), "POST", "/api/v1/dlq/" + id + "/retry");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "subscription_not_found") << r.body;
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "1");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries"), "0");
}

// PUT /api/v1/queues/{queue} {"mode":"queue"} checked and wrote the mode under the per-queue
// lock, then wrote it a second time without the lock (queue_modes::set, for its cache). A
// switch to broadcast and a second subscription landing between the two writes were then
// overwritten by queue mode: a queue-mode queue with two subscriptions, competing for the
// relay's one RabbitMQ queue. A test trigger holds the second write of sluice_queues back so
// the other requests land in between.
TEST_F(attack1_routes_test, a_switch_to_queue_mode_never_overwrites_a_later_switch_back) {
  sluice_process s(env());
  wait_schema(s);
  const auto port = s.port();
  ASSERT_EQ(put(port, "/api/v1/queues/orders", R"({"mode":"broadcast"})").status, 200);
  ASSERT_EQ(
      put(port, "/api/v1/queues/orders/subscriptions/a", R"({"url":"http://127.0.0.1:9/"})").status,
      201);
  pg_session(db_.url()).query(
      "CREATE SEQUENCE attack1_gate; "
      "CREATE FUNCTION attack1_hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF nextval('attack1_gate') = 2 THEN PERFORM pg_sleep(2); END IF; RETURN NULL; END $$; "
      "CREATE TRIGGER attack1_hold BEFORE INSERT ON sluice_queues "
      "FOR EACH STATEMENT EXECUTE FUNCTION attack1_hold()");
  int to_queue = 0;
  std::thread switcher(
      [&] { to_queue = put(port, "/api/v1/queues/orders", R"({"mode":"queue"})").status; });
  // The switch's locked write (statement 1 on sluice_queues) commits; a second one, if any,
  // is held back 2 s by the trigger.
  ASSERT_TRUE(eventually([&] { return scalar("SELECT mode FROM sluice_queues") == "queue"; }, 5s));
  std::this_thread::sleep_for(200ms);
  const auto back = put(port, "/api/v1/queues/orders", R"({"mode":"broadcast"})");
  const auto second =
      put(port, "/api/v1/queues/orders/subscriptions/b", R"({"url":"http://127.0.0.1:9/"})");
  switcher.join();
  EXPECT_EQ(to_queue, 200);
  EXPECT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(second.status, 201) << second.body;
  const auto mode = scalar("SELECT mode FROM sluice_queues WHERE queue = 'orders'");
  const auto subs = scalar("SELECT count(*) FROM sluice_subscriptions WHERE queue = 'orders'");
  EXPECT_FALSE(mode == "queue" && subs != "1") << "queue mode with " << subs << " subscriptions";
  // The API answers what PostgreSQL holds.
  const auto read = http_call(port, "GET", "/api/v1/queues/orders");
  EXPECT_EQ(read.json()["mode"], mode);
}

}  // namespace
}  // namespace sluice::test
