// attack1: findings of the attack review of issue #10's delivery API, through the real binary
// on a real PostgreSQL. Each test failed before its fix (see the commit that added it).
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds within) {
  const auto deadline = steady::now() + within;
  while (steady::now() < deadline) {
    if (done())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

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

}  // namespace
}  // namespace sluice::test
