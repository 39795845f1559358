// The delayed-retry rows against a real PostgreSQL: what a park writes and a claim reads back,
// which rows a claim may take (due, not paused, not deleted, not claimed), leases, concurrent
// claimers, and the blocked partitions of ordered subscriptions.
#include <algorithm>
#include <set>

#include "sluice/delivery/retry_store.hpp"
#include "sluice/store/migrations.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "sluice_test/pg.hpp"

namespace sluice::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;
using sluice::test::pg_session;
using sluice::test::scoped_database;
using system_clock = std::chrono::system_clock;

template <typename T>
T run(asio::io_context& io, asio::awaitable<T> work) {
  auto future = asio::co_spawn(io, std::move(work), asio::use_future);
  io.restart();
  io.run();
  return future.get();
}

store::clock::time_point in(std::chrono::milliseconds d) {
  return store::clock::now() + d;
}

class retry_store_test : public ::testing::Test {
 protected:
  scoped_database db_;
  asio::io_context io_;
  std::unique_ptr<store::pg_pool> pool_ = make_pool();
  retry_store store_{*pool_};
  uuid_v7_generator ids_;

  std::unique_ptr<store::pg_pool> make_pool() {
    store::pool_options o;
    o.connection.conninfo = db_.url();
    o.max_connections = 4;
    return std::make_unique<store::pg_pool>(io_.get_executor(), o);
  }

  void SetUp() override {
    const auto migrated = run(io_, store::apply_migrations(*pool_, in(10s)));
    ASSERT_FALSE(migrated.ec) << migrated.message;
    add_subscription("q", "s");
  }

  void sql(const std::string& text) { pg_session(db_.url()).query(text); }
  std::string scalar(const std::string& text) { return pg_session(db_.url()).scalar(text); }

  void add_subscription(const std::string& queue, const std::string& name) {
    sql("INSERT INTO sluice_subscriptions (queue, name, spec) VALUES ('" + queue + "', '" + name +
        "', '{}')");
  }

  parked_message message(const std::string& subscription = "s", const std::string& queue = "q",
                         const std::string& partition = "p") {
    parked_message m;
    m.queue = queue;
    m.subscription = subscription;
    m.message_id = ids_.next();
    m.partition = partition;
    m.headers = {{"queue", queue}, {"partition", partition}, {"traceId", "t-1"}};
    m.created_ms = 1'720'000'000'123;
    m.payload = R"({ "a" : "\u00e9" })";
    m.attempt = 2;
    m.first_attempt_ms = 1'720'000'000'456;
    return m;
  }

  void park(const parked_message& m, system_clock::time_point due = system_clock::now()) {
    const auto ec = run(io_, store_.park(m, due, in(10s)));
    ASSERT_FALSE(ec) << store_.last_error();
  }

  std::vector<parked_message> claim(std::size_t limit = 100,
                                    std::chrono::milliseconds lease = 30s) {
    auto [ec, rows] = run(io_, store_.claim_due(limit, lease, in(10s)));
    EXPECT_FALSE(ec) << store_.last_error();
    return std::move(rows);
  }

  int rows() { return std::stoi(scalar("SELECT count(*) FROM sluice_delivery_retries")); }
};

TEST_F(retry_store_test, park_claim_remove_round_trips_the_message_exactly) {
  parked_message m = message();
  m.payload = std::string("{\"b\":\"\0\xff\x01\"}", 12);  // bytea: any bytes, NUL included
  m.headers.emplace_back("transactionId", "tx \"quoted\" \xc3\xa9");
  park(m, system_clock::now() - 1s);
  EXPECT_EQ(scalar("SELECT origin FROM sluice_delivery_retries"), "retry");

  const auto claimed = claim();
  ASSERT_EQ(claimed.size(), 1u);
  const parked_message& got = claimed[0];
  EXPECT_EQ(got.queue, m.queue);
  EXPECT_EQ(got.subscription, m.subscription);
  EXPECT_EQ(got.message_id, m.message_id);
  EXPECT_EQ(got.partition, m.partition);
  EXPECT_EQ(got.created_ms, m.created_ms);
  EXPECT_EQ(got.payload, m.payload);
  EXPECT_EQ(got.attempt, 2u);
  EXPECT_EQ(got.first_attempt_ms, m.first_attempt_ms);
  EXPECT_FALSE(got.redrive);
  EXPECT_NE(got.claim_token, 0);
  auto want_headers = m.headers;
  auto got_headers = got.headers;
  std::sort(want_headers.begin(), want_headers.end());
  std::sort(got_headers.begin(), got_headers.end());
  EXPECT_EQ(got_headers, want_headers);

  EXPECT_TRUE(claim().empty()) << "a claimed row is not claimed again within its lease";
  ASSERT_FALSE(run(io_, store_.remove(claimed, in(10s)))) << store_.last_error();
  EXPECT_EQ(rows(), 0);
}

TEST_F(retry_store_test, parking_a_message_again_replaces_its_row) {
  parked_message m = message();
  park(m, system_clock::now() - 1s);
  const auto first = claim();
  ASSERT_EQ(first.size(), 1u);

  // The retry was delivered, failed again and is parked before the scheduler deletes the row
  // it published: the new row must survive that delete.
  m.attempt = 3;
  m.first_attempt_ms = 1'720'000'999'999;  // the row keeps the first one it had
  park(m, system_clock::now() - 1s);
  EXPECT_EQ(rows(), 1);
  ASSERT_FALSE(run(io_, store_.remove(first, in(10s))));
  EXPECT_EQ(rows(), 1) << "remove() deletes only the claim it was given";

  const auto second = claim();
  ASSERT_EQ(second.size(), 1u) << "the new park cleared the claim";
  EXPECT_EQ(second[0].attempt, 3u);
  EXPECT_EQ(second[0].first_attempt_ms, std::optional<std::int64_t>(1'720'000'000'456));
  ASSERT_FALSE(run(io_, store_.remove(second, in(10s))));
  EXPECT_EQ(rows(), 0);
}

TEST_F(retry_store_test, claims_only_due_rows_of_existing_unpaused_subscriptions_in_due_order) {
  add_subscription("q", "paused");
  sql("UPDATE sluice_subscriptions SET paused_at = now(), paused_reason = 'gone' "
      "WHERE name = 'paused'");
  const auto now = system_clock::now();
  const parked_message later = message();
  const parked_message earlier = message();
  park(later, now - 1s);
  park(earlier, now - 5s);
  park(message(), now + 1h);                 // not due
  park(message("paused"), now - 10s);        // paused subscription
  park(message("deleted"), now - 10s);       // no such subscription
  park(message("s", "other-q"), now - 10s);  // same name, other queue: no subscription either

  auto claimed = claim();
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_EQ(claimed[0].message_id, earlier.message_id);
  EXPECT_EQ(claimed[1].message_id, later.message_id);

  sql("UPDATE sluice_subscriptions SET paused_at = NULL WHERE name = 'paused'");
  claimed = claim();
  ASSERT_EQ(claimed.size(), 1u) << "resumed: its rows are claimed again";
  EXPECT_EQ(claimed[0].subscription, "paused");
}

TEST_F(retry_store_test, claim_respects_the_limit) {
  for (int i = 0; i < 5; ++i)
    park(message(), system_clock::now() - std::chrono::seconds(10 - i));
  EXPECT_EQ(claim(3).size(), 3u);
  EXPECT_EQ(claim(3).size(), 2u);
  EXPECT_EQ(claim(3).size(), 0u);
}

TEST_F(retry_store_test, an_expired_lease_lets_another_claimer_take_the_row) {
  park(message(), system_clock::now() - 1s);
  const auto first = claim(10, 300ms);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(claim(10, 300ms).empty());

  retry_store other(*pool_);
  const auto until = store::clock::now() + 5s;
  std::vector<parked_message> second;
  while (second.empty() && store::clock::now() < until) {
    auto [ec, rows] = run(io_, other.claim_due(10, 30s, in(10s)));
    ASSERT_FALSE(ec) << other.last_error();
    second = std::move(rows);
  }
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].message_id, first[0].message_id);
  EXPECT_NE(second[0].claim_token, first[0].claim_token);

  // The first claimer's late delete (its publish outlived its lease) leaves the new claim.
  ASSERT_FALSE(run(io_, store_.remove(first, in(10s))));
  EXPECT_EQ(rows(), 1);
  ASSERT_FALSE(run(io_, other.remove(second, in(10s))));
  EXPECT_EQ(rows(), 0);
}

TEST_F(retry_store_test, concurrent_claimers_never_get_the_same_row) {
  constexpr int total = 400;
  for (int i = 0; i < total; ++i)
    park(message(), system_clock::now() - 1s);

  retry_store a(*pool_);
  retry_store b(*pool_);
  std::vector<uuid> got_a;
  std::vector<uuid> got_b;
  const auto drain = [](retry_store& s, std::vector<uuid>& got) -> asio::awaitable<void> {
    for (;;) {
      auto [ec, rows] = co_await s.claim_due(7, 30s, in(10s));
      if (ec) {
        ADD_FAILURE() << s.last_error();
        co_return;
      }
      if (rows.empty())
        co_return;
      for (const auto& m : rows)
        got.push_back(m.message_id);
    }
  };
  const auto both = [&]() -> asio::awaitable<void> {
    auto left = drain(a, got_a);
    auto right = drain(b, got_b);
    co_await (std::move(left) && std::move(right));
  };
  run(io_, both());

  // How the rows split is up to the scheduler (one claimer can take every batch before the
  // other's first claim returns, seen in a CI rehearsal): only "never the same row" is the
  // promise.
  RecordProperty("claimed_by_a", static_cast<int>(got_a.size()));
  RecordProperty("claimed_by_b", static_cast<int>(got_b.size()));
  std::set<uuid> all(got_a.begin(), got_a.end());
  for (const auto& id : got_b)
    EXPECT_TRUE(all.insert(id).second) << "claimed twice: " << id.to_string();
  EXPECT_EQ(all.size(), static_cast<std::size_t>(total));
  EXPECT_EQ(got_a.size() + got_b.size(), static_cast<std::size_t>(total));
}

TEST_F(retry_store_test, ordered_partition_releases_parked_messages_one_at_a_time_in_id_order) {
  const parked_message head = message("s", "q", "p1");
  std::vector<parked_message> behind;
  for (int i = 0; i < 3; ++i)
    behind.push_back(message("s", "q", "p1"));
  const parked_message elsewhere = message("s", "q", "p2");
  park(head, system_clock::now() + 1h);
  // Parked out of id order: the release order is the ids', not the parks'.
  for (int i : {2, 0, 1}) {
    ASSERT_FALSE(run(io_, store_.park_behind(behind[i], in(10s)))) << store_.last_error();
  }
  ASSERT_FALSE(run(io_, store_.park_behind(elsewhere, in(10s))));
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries WHERE due_at = 'infinity'"), "4");

  {
    auto [ec, blocked] = run(io_, store_.blocked_partitions("q", "s", in(10s)));
    ASSERT_FALSE(ec);
    EXPECT_EQ(blocked, (std::set<std::string>{"p1", "p2"}));
    auto [ec2, none] = run(io_, store_.blocked_partitions("q", "other", in(10s)));
    ASSERT_FALSE(ec2);
    EXPECT_TRUE(none.empty());
  }
  EXPECT_TRUE(claim().empty()) << "rows behind a head are never due by themselves";
  {
    auto [ec, next] = run(io_, store_.next_due(in(10s)));
    ASSERT_FALSE(ec) << store_.last_error();
    ASSERT_TRUE(next);
    EXPECT_GT(*next, system_clock::now() + 50min) << "the head's due time, not 'infinity'";
  }

  for (int i = 0; i < 3; ++i) {
    auto [ec, released] = run(io_, store_.release_next("q", "s", "p1", in(10s)));
    ASSERT_FALSE(ec) << store_.last_error();
    ASSERT_TRUE(released);
    const auto claimed = claim();
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(claimed[0].message_id, behind[i].message_id) << i;
    ASSERT_FALSE(run(io_, store_.remove(claimed, in(10s))));
  }
  auto [ec, released] = run(io_, store_.release_next("q", "s", "p1", in(10s)));
  ASSERT_FALSE(ec);
  EXPECT_FALSE(released) << "nothing left behind the head: the partition is free";
  EXPECT_EQ(rows(), 2) << "the head (due in an hour) and p2's row are untouched";
}

TEST_F(retry_store_test, next_due_is_the_earliest_claimable_time) {
  {
    auto [ec, next] = run(io_, store_.next_due(in(10s)));
    ASSERT_FALSE(ec) << store_.last_error();
    EXPECT_FALSE(next);
  }
  const auto now = system_clock::now();
  park(message(), now + 10min);
  park(message(), now + 2min);
  add_subscription("q", "paused");
  sql("UPDATE sluice_subscriptions SET paused_at = now() WHERE name = 'paused'");
  park(message("paused"), now + 1min);
  auto [ec, next] = run(io_, store_.next_due(in(10s)));
  ASSERT_FALSE(ec);
  ASSERT_TRUE(next);
  EXPECT_LE(std::chrono::abs(*next - (now + 2min)), 1ms);
}

TEST_F(retry_store_test, orphans_of_deleted_subscriptions_are_removed_after_the_grace) {
  add_subscription("q", "gone");
  const auto now = system_clock::now();
  park(message("gone"), now - 1h);
  park(message("gone"), now - 1h);
  park(message("gone"), now - 1s);  // within the grace
  parked_message old_behind = message("gone");
  old_behind.created_ms = 1'600'000'000'000;
  ASSERT_FALSE(run(io_, store_.park_behind(old_behind, in(10s))));
  park(message("s"), now - 1h);  // its subscription exists
  sql("DELETE FROM sluice_subscriptions WHERE name = 'gone'");

  auto [ec, n] = run(io_, store_.remove_orphans(2, 30s, in(10s)));
  ASSERT_FALSE(ec) << store_.last_error();
  EXPECT_EQ(n, 2u) << "small batches";
  auto [ec2, n2] = run(io_, store_.remove_orphans(100, 30s, in(10s)));
  ASSERT_FALSE(ec2);
  EXPECT_EQ(n2, 1u);
  EXPECT_EQ(rows(), 2);
  auto [ec3, count] = run(io_, store_.count(in(10s)));
  ASSERT_FALSE(ec3);
  EXPECT_EQ(count, 2u);
}

TEST_F(retry_store_test, redrive_rows_are_told_apart) {
  const parked_message m = message();
  sql("INSERT INTO sluice_delivery_retries (queue, subscription, message_id, attempt, due_at, "
      "origin, partition, headers, created_ms, payload) VALUES ('q', 's', '" +
      m.message_id.to_string() +
      "', 1, now(), 'redrive', 'p', '{\"queue\":\"q\"}', 5, 'x'::bytea)");
  const auto claimed = claim();
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_TRUE(claimed[0].redrive);
  EXPECT_FALSE(claimed[0].first_attempt_ms);
  EXPECT_EQ(claimed[0].attempt, 1u);
  EXPECT_EQ(claimed[0].payload, "x");
}

// A re-drive is published without x-sluice-released (it is not its partition's head), so an
// ordered consumer that counted it as blocking would park the re-drive behind itself when it
// arrives, and nothing would ever release that partition.
TEST_F(retry_store_test, redrive_rows_do_not_block_their_partition) {
  const parked_message m = message("s", "q", "p");
  sql("INSERT INTO sluice_delivery_retries (queue, subscription, message_id, attempt, due_at, "
      "origin, partition, headers, created_ms, payload) VALUES ('q', 's', '" +
      m.message_id.to_string() +
      "', 1, now(), 'redrive', 'p', '{\"queue\":\"q\"}', 5, 'x'::bytea)");
  auto [ec, blocked] = run(io_, store_.blocked_partitions("q", "s", in(10s)));
  ASSERT_FALSE(ec);
  EXPECT_TRUE(blocked.empty());
  park(message("s", "q", "p"), system_clock::now() + 1h);
  auto [ec2, now_blocked] = run(io_, store_.blocked_partitions("q", "s", in(10s)));
  ASSERT_FALSE(ec2);
  EXPECT_EQ(now_blocked, (std::set<std::string>{"p"})) << "a parked retry still blocks it";
}

}  // namespace
}  // namespace sluice::delivery
