// dead_letter_store against a real PostgreSQL: insert (upsert, the retry row goes in the same
// statement), listing with filters and keyset cursor, lookups of broadcast messages with one
// row per subscription, removal, and re-drive atomicity.
#include <algorithm>
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

// 30 rows over two queues and three subscriptions, dead_at one second apart in message order.
class dlq_list_test : public dlq_store_test {
 protected:
  void SetUp() override {
    for (int n = 1; n <= 30; ++n)
      insert(make_dead_letter(n, n % 2 ? "orders" : "invoices", "s" + std::to_string(n % 3)));
    auto s = env_.session();
    test::spread_dead_at(s, 1000ms);
  }

  // Every page of `filter` with pages of `limit`; the message numbers in listing order.
  std::vector<int> all_pages(const dead_letter_filter& filter, std::size_t limit) {
    std::vector<int> out;
    std::optional<dead_letter_key> after;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = run(env_.io, store_.list(filter, after, limit, in(10s)));
      EXPECT_FALSE(page.status) << page.status.message;
      EXPECT_LE(page.items.size(), limit);
      for (const auto& d : page.items)
        out.push_back(static_cast<int>(d.message.created_ms - 1'760'000'000'000));
      if (!page.next)
        break;
      // The cursor survives its encoding.
      after = dead_letter_key::decode(page.next->encode());
      EXPECT_TRUE(after);
    }
    return out;
  }

  static std::vector<int> numbers(int from, int to, int step = 1) {
    std::vector<int> out;
    for (int n = from; n <= to; n += step)
      out.push_back(n);
    return out;
  }
};

TEST_F(dlq_list_test, pages_walk_every_row_once_in_dead_at_order) {
  EXPECT_EQ(all_pages({}, 7), numbers(1, 30));
  EXPECT_EQ(all_pages({}, 30), numbers(1, 30));
  EXPECT_EQ(all_pages({}, 100), numbers(1, 30));
}

TEST_F(dlq_list_test, filters_by_queue_subscription_and_time) {
  dead_letter_filter f;
  f.queue = "orders";
  EXPECT_EQ(all_pages(f, 4), numbers(1, 29, 2));
  f.subscription = "s0";
  EXPECT_EQ(all_pages(f, 2), (std::vector<int>{3, 9, 15, 21, 27}));
  dead_letter_filter t;
  // 2026-01-01T00:00:10Z .. 00:00:20Z: start inclusive, end exclusive.
  t.start_ms = 1'767'225'600'000 + 10'000;
  t.end_ms = 1'767'225'600'000 + 20'000;
  EXPECT_EQ(all_pages(t, 3), numbers(10, 19));
  t.subscription = "s1";
  EXPECT_EQ(all_pages(t, 3), (std::vector<int>{10, 13, 16, 19}));
}

TEST_F(dlq_list_test, a_broadcast_message_with_rows_of_equal_dead_at_is_never_skipped) {
  for (const char* sub : {"a", "b", "c"})
    insert(make_dead_letter(100, "fanout", sub));
  env_.session().query(
      "UPDATE sluice_dead_letters SET dead_at = '2026-01-01 00:00:05.5+00' WHERE queue = "
      "'fanout'");
  auto pages = all_pages({}, 1);
  ASSERT_EQ(pages.size(), 33u);
  EXPECT_EQ(std::count(pages.begin(), pages.end(), 100), 3);
  EXPECT_EQ(pages[5], 100);
  EXPECT_EQ(pages[8], 6);
}

TEST_F(dlq_store_test, find_answers_every_row_of_a_broadcast_message_unless_narrowed) {
  for (const char* sub : {"b", "a"})
    insert(make_dead_letter(7, "fanout", sub));
  insert(make_dead_letter(7, "other", "a"));
  const uuid id = test::id_of(7);
  auto [s1, all] = run(env_.io, store_.find(id, {}, {}, in(10s)));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].message.queue + "/" + all[0].message.subscription, "fanout/a");
  EXPECT_EQ(all[1].message.queue + "/" + all[1].message.subscription, "fanout/b");
  auto [s2, by_sub] = run(env_.io, store_.find(id, {}, std::string("a"), in(10s)));
  EXPECT_EQ(by_sub.size(), 2u);
  auto [s3, one] = run(env_.io, store_.find(id, std::string("fanout"), std::string("a"), in(10s)));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].message.payload, make_dead_letter(7, "fanout", "a").message.payload);
  auto [s4, none] = run(env_.io, store_.find(test::id_of(8), {}, {}, in(10s)));
  EXPECT_FALSE(s4);
  EXPECT_TRUE(none.empty());
}

TEST_F(dlq_store_test, remove_deletes_one_row) {
  insert(make_dead_letter(1, "q", "a"));
  insert(make_dead_letter(1, "q", "b"));
  auto [s1, gone] = run(env_.io, store_.remove(test::id_of(1), "q", "a", in(10s)));
  EXPECT_FALSE(s1);
  EXPECT_TRUE(gone);
  auto [s2, again] = run(env_.io, store_.remove(test::id_of(1), "q", "a", in(10s)));
  EXPECT_FALSE(again);
  EXPECT_EQ(count("SELECT string_agg(subscription, ',') FROM sluice_dead_letters"), "b");
}

TEST_F(dlq_store_test, redrive_one_moves_the_message_to_a_retry_row_due_now) {
  const auto d = make_dead_letter(4, "orders", "billing");
  insert(d);
  auto session = env_.session();
  test::subscribe(session, "orders", "billing");
  auto [s1, moved] = run(env_.io, store_.redrive_one(test::id_of(4), "orders", "billing", in(10s)));
  ASSERT_FALSE(s1) << s1.message;
  EXPECT_TRUE(moved);
  EXPECT_EQ(count("SELECT count(*) FROM sluice_dead_letters"), "0");
  EXPECT_EQ(count("SELECT attempt || ',' || origin || ',' || (due_at <= now()) || ',' || "
                  "partition || ',' || created_ms || ',' || (first_attempt_at IS NULL) || ',' || "
                  "convert_from(payload, 'UTF8') || ',' || (headers->>'traceId') FROM "
                  "sluice_delivery_retries WHERE message_id = '" +
                  test::id_of(4).to_string() + "'"),
            "1,redrive,true,p1,1760000000004,true," + d.message.payload + ",t4");
  auto [s2, again] = run(env_.io, store_.redrive_one(test::id_of(4), "orders", "billing", in(10s)));
  EXPECT_FALSE(s2);
  EXPECT_FALSE(again) << "nothing left to re-drive";
  EXPECT_EQ(count("SELECT count(*) FROM sluice_delivery_retries"), "1");
}

TEST_F(dlq_store_test, redrive_one_is_atomic_when_the_retry_row_cannot_be_written) {
  insert(make_dead_letter(5, "blocked", "billing"));
  auto session = env_.session();
  test::subscribe(session, "blocked", "billing");
  env_.session().query(
      "ALTER TABLE sluice_delivery_retries ADD CONSTRAINT test_refuse CHECK (queue <> 'blocked')");
  auto [s1, moved] =
      run(env_.io, store_.redrive_one(test::id_of(5), "blocked", "billing", in(10s)));
  EXPECT_TRUE(s1);
  EXPECT_FALSE(moved);
  EXPECT_EQ(count("SELECT count(*) FROM sluice_dead_letters"), "1") << "the dead letter stays";
  EXPECT_EQ(count("SELECT count(*) FROM sluice_delivery_retries"), "0");
}

TEST_F(dlq_store_test, counts_rows_per_queue) {
  insert(make_dead_letter(1, "a", "x"));
  insert(make_dead_letter(2, "a", "x"));
  insert(make_dead_letter(3, "b", "x"));
  auto [s, counts] = run(env_.io, store_.count_by_queue(in(10s)));
  ASSERT_FALSE(s);
  std::sort(counts.begin(), counts.end());
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0], (std::pair<std::string, std::int64_t>("a", 2)));
  EXPECT_EQ(counts[1], (std::pair<std::string, std::int64_t>("b", 1)));
}

TEST(dead_letter_key_test, decode_refuses_what_encode_cannot_make) {
  dead_letter_key k{123456789, test::id_of(3), "queue", "sub"};
  const auto back = dead_letter_key::decode(k.encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->dead_us, k.dead_us);
  EXPECT_EQ(back->id, k.id);
  EXPECT_EQ(back->queue, "queue");
  EXPECT_EQ(back->subscription, "sub");
  EXPECT_FALSE(dead_letter_key::decode("short"));
  std::string bad = k.encode();
  bad[27] = 100;  // queue length beyond the end
  EXPECT_FALSE(dead_letter_key::decode(bad));
  dead_letter_key far = k;
  far.dead_us = -1;
  EXPECT_FALSE(dead_letter_key::decode(far.encode())) << "no time PostgreSQL cannot hold";
}

}  // namespace
}  // namespace sluice::delivery
