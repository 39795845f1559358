// The relay's statements against a real PostgreSQL: what the sweeper may claim, that claims of
// concurrent sweepers never overlap, marking, the backlog, and the queue-mode table.
#include <algorithm>
#include <set>

#include "sluice/relay/queue_modes.hpp"
#include "sluice/relay/relay_store.hpp"
#include "sluice/store/message_store.hpp"
#include "sluice/store/migrations.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "sluice_test/pg.hpp"

namespace sluice::relay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::test::pg_session;
using sluice::test::scoped_database;

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

class relay_store_test : public ::testing::Test {
 protected:
  scoped_database db_;
  asio::io_context io_;
  std::unique_ptr<store::pg_pool> pool_ = make_pool();
  std::vector<message> stored_;

  std::unique_ptr<store::pg_pool> make_pool() {
    store::pool_options o;
    o.connection.conninfo = db_.url();
    o.max_connections = 2;
    return std::make_unique<store::pg_pool>(io_.get_executor(), o);
  }

  void SetUp() override {
    const auto migrated = run(io_, store::apply_migrations(*pool_, in(10s)));
    ASSERT_FALSE(migrated.ec) << migrated.message;
  }

  // Stores `n` messages; the first `old` of them look stored an hour ago.
  void store_messages(int n, int old) {
    uuid_v7_generator ids;
    std::vector<message> batch;
    for (int i = 0; i < n; ++i) {
      message m;
      m.id = ids.next();
      m.created_ms = 1'720'000'000'000 + i;
      m.queue = "q" + std::to_string(i % 3);
      m.partition = "p";
      if (i % 2 == 0) {
        m.namespace_ = "ns";
        m.transaction_id = "txn-" + std::to_string(i);
      }
      m.payload = R"({ "i" : )" + std::to_string(i) + R"(,  "s":"\u00e9" })";
      batch.push_back(m);
    }
    store::message_store messages(*pool_);
    const auto r = run(io_, messages.insert_batch(batch, in(10s)));
    ASSERT_FALSE(r.ec) << r.message;
    stored_.insert(stored_.end(), batch.begin(), batch.end());
    std::vector<std::string> old_ids;
    for (int i = 0; i < old; ++i)
      old_ids.push_back("'" + batch[i].id.to_string() + "'");
    if (!old_ids.empty()) {
      std::string list;
      for (const auto& id : old_ids)
        list += (list.empty() ? "" : ",") + id;
      pg_session(db_.url()).query(
          "UPDATE sluice_relay_outbox SET stored_at = now() - interval '1 hour' WHERE id IN (" +
          list + ")");
    }
  }

  claim_result claim(std::size_t batch, std::chrono::milliseconds lease = 30s) {
    relay_store store(*pool_);
    claim_options o;
    o.batch = batch;
    o.grace = 5s;
    o.lease = lease;
    return run(io_, store.claim(o, in(10s)));
  }
};

TEST_F(relay_store_test, claims_old_unpublished_rows_in_id_order_with_their_exact_contents) {
  store_messages(10, 6);
  const auto c = claim(100);
  ASSERT_FALSE(c.ec) << c.error_text;
  ASSERT_EQ(c.rows.size(), 6u) << "rows inside the grace period belong to the in-memory path";
  for (std::size_t i = 0; i < c.rows.size(); ++i) {
    const message& got = c.rows[i];
    const message& want = stored_[i];
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.created_ms, want.created_ms);
    EXPECT_EQ(got.queue, want.queue);
    EXPECT_EQ(got.partition, want.partition);
    EXPECT_EQ(got.namespace_, want.namespace_);
    EXPECT_EQ(got.task, want.task);
    EXPECT_EQ(got.trace_id, want.trace_id);
    EXPECT_EQ(got.transaction_id, want.transaction_id);
    EXPECT_EQ(got.payload, want.payload) << "json keeps the bytes as pushed";
  }
}

TEST_F(relay_store_test, a_live_claim_keeps_sweepers_off_until_its_lease_ends_or_is_released) {
  store_messages(8, 8);
  ASSERT_EQ(claim(3).rows.size(), 3u);
  const auto second = claim(100, 300ms);
  ASSERT_EQ(second.rows.size(), 5u) << "the first three are claimed";
  EXPECT_EQ(second.rows.front().id, stored_[3].id);
  EXPECT_TRUE(claim(100).rows.empty());

  relay_store store(*pool_);
  const std::vector<uuid> give_back = {stored_[0].id, stored_[1].id};
  EXPECT_FALSE(run(io_, store.release(give_back, in(10s))));
  const auto released = claim(100);
  ASSERT_EQ(released.rows.size(), 2u);
  EXPECT_EQ(released.rows[0].id, stored_[0].id);

  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(claim(100).rows.size(), 5u) << "the 300 ms lease ran out";
}

TEST_F(relay_store_test, held_rows_are_kept_from_sweepers_for_the_lease) {
  // What an instance does with the rows it sent but had not had confirmed when its connection
  // dropped: it re-sends them itself, so no other instance's sweeper may take them meanwhile.
  store_messages(4, 4);
  relay_store store(*pool_);
  const std::vector<uuid> in_flight = {stored_[0].id, stored_[2].id};
  EXPECT_FALSE(run(io_, store.hold(in_flight, 300ms, in(10s))));
  const auto others = claim(100, 50ms);
  ASSERT_EQ(others.rows.size(), 2u);
  EXPECT_EQ(others.rows[0].id, stored_[1].id);
  EXPECT_EQ(others.rows[1].id, stored_[3].id);
  std::this_thread::sleep_for(400ms);
  const auto after = claim(100);
  ASSERT_EQ(after.rows.size(), 4u) << "the hold and the 50 ms claims ran out";
  EXPECT_EQ(after.rows[0].id, stored_[0].id);
}

TEST_F(relay_store_test, concurrent_sweepers_never_claim_the_same_row) {
  store_messages(300, 300);
  // Three sweepers on their own connections, claiming at the same moment, again and again.
  std::vector<std::unique_ptr<store::pg_pool>> pools;
  for (int i = 0; i < 3; ++i)
    pools.push_back(make_pool());
  std::vector<std::vector<uuid>> got(3);
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(
        io_,
        [&, i]() -> asio::awaitable<void> {
          relay_store store(*pools[i]);
          claim_options o;
          o.batch = 7;
          while (true) {
            const claim_result c = co_await store.claim(o, in(10s));
            if (c.ec || c.rows.empty())
              co_return;
            for (const auto& m : c.rows)
              got[i].push_back(m.id);
          }
        },
        asio::detached);
  }
  io_.restart();
  io_.run();
  std::set<uuid> all;
  std::size_t total = 0;
  for (const auto& ids : got) {
    total += ids.size();
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(total, 300u);
  EXPECT_EQ(all.size(), 300u) << "no row went to two sweepers";
}

TEST_F(relay_store_test, marks_once_and_the_backlog_counts_what_is_left) {
  store_messages(5, 5);
  relay_store store(*pool_);
  auto backlog = run(io_, store.backlog(in(10s)));
  ASSERT_FALSE(backlog.ec) << backlog.error_text;
  EXPECT_EQ(backlog.rows, 5u);
  ASSERT_TRUE(backlog.oldest_age_seconds);
  EXPECT_GT(*backlog.oldest_age_seconds, 1000.0) << "created_ms is in 2024";

  const std::vector<uuid> ids = {stored_[0].id, stored_[1].id, stored_[2].id};
  auto marked = run(io_, store.mark_published(ids, in(10s)));
  ASSERT_FALSE(marked.ec) << marked.error_text;
  EXPECT_EQ(marked.marked, 3u);
  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_relay_outbox WHERE id = '" +
                      stored_[0].id.to_string() + "'"),
            "0");
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_messages WHERE id = '" +
                      stored_[0].id.to_string() + "'"),
            "1")
      << "the message itself stays";
  marked = run(io_, store.mark_published(ids, in(10s)));
  EXPECT_EQ(marked.marked, 0u) << "a duplicate publish marks nothing again";
  EXPECT_EQ(claim(100).rows.size(), 2u) << "published rows are never claimed";

  backlog = run(io_, store.backlog(in(10s)));
  EXPECT_EQ(backlog.rows, 2u);
  const std::vector<uuid> rest = {stored_[3].id, stored_[4].id};
  run(io_, store.mark_published(rest, in(10s)));
  backlog = run(io_, store.backlog(in(10s)));
  EXPECT_EQ(backlog.rows, 0u);
  EXPECT_FALSE(backlog.oldest_age_seconds);
}

TEST_F(relay_store_test, queue_modes_are_stored_cached_and_refreshed) {
  queue_modes modes(*pool_);
  EXPECT_FALSE(modes.loaded());
  EXPECT_EQ(modes.mode_of("orders"), queue_mode::queue);
  EXPECT_FALSE(run(io_, modes.refresh(in(10s))));
  EXPECT_TRUE(modes.loaded());

  auto [ec, setting] = run(io_, modes.get("orders", in(10s)));
  EXPECT_FALSE(ec);
  EXPECT_FALSE(setting.configured);
  EXPECT_EQ(setting.mode, queue_mode::queue);

  EXPECT_FALSE(run(io_, modes.set("orders", queue_mode::broadcast, in(10s))));
  EXPECT_EQ(modes.mode_of("orders"), queue_mode::broadcast) << "cached at once";
  std::tie(ec, setting) = run(io_, modes.get("orders", in(10s)));
  EXPECT_TRUE(setting.configured);
  EXPECT_EQ(setting.mode, queue_mode::broadcast);

  // Another instance changes it: this one sees it after its next refresh.
  pg_session(db_.url()).query("UPDATE sluice_queues SET mode = 'queue' WHERE queue = 'orders'");
  pg_session(db_.url()).query(
      "INSERT INTO sluice_queues (queue, mode) VALUES ('events', 'broadcast')");
  EXPECT_EQ(modes.mode_of("orders"), queue_mode::broadcast);
  EXPECT_FALSE(run(io_, modes.refresh(in(10s))));
  EXPECT_EQ(modes.mode_of("orders"), queue_mode::queue);
  EXPECT_EQ(modes.mode_of("events"), queue_mode::broadcast);
}

}  // namespace
}  // namespace sluice::relay
