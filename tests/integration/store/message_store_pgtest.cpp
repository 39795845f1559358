#include <chrono>
#include <string>
#include <vector>

#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/store/message_store.hpp"
#include "sluice/store/migrations.hpp"
#include "sluice/store/pg_pool.hpp"

#include <gtest/gtest.h>

#include "store_test_support.hpp"

namespace sluice::store {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::in;

class message_store_test : public ::testing::TestWithParam<insert_strategy> {
 protected:
  // One database for the suite (creating one takes longer than the tests); each test starts
  // from an empty table.
  static void SetUpTestSuite() {
    shared_db_ = std::make_unique<test::scratch_database>();
    asio::io_context io;
    pool_options o;
    o.connection.conninfo = shared_db_->conninfo();
    pg_pool pool(io.get_executor(), o);
    const migration_result m = test::run(io, apply_migrations(pool, in(10s)));
    if (m.ec)
      throw std::runtime_error("migrations: " + m.message);
  }

  static void TearDownTestSuite() { shared_db_.reset(); }

  static test::scratch_database& shared() {
    if (!shared_db_)
      throw std::runtime_error("suite set-up failed: no scratch database");
    return *shared_db_;
  }

  message_store_test() : db_(shared()) {
    db_.query("TRUNCATE sluice_messages, sluice_relay_outbox");
    pool_options o;
    o.connection.conninfo = db_.conninfo();
    pool_ = std::make_unique<pg_pool>(io_.get_executor(), o);
    store_ = std::make_unique<message_store>(*pool_, message_store_options{GetParam()});
  }

  message make(std::string queue, std::optional<std::string> txn,
               std::string payload = R"({"n": 1})") {
    message m;
    m.id = ids_.next();
    m.created_ms = 1'700'000'000'123;
    m.queue = std::move(queue);
    m.partition = "Default";
    m.transaction_id = std::move(txn);
    m.payload = std::move(payload);
    return m;
  }

  insert_result insert(const std::vector<message>& batch) {
    return test::run(io_, store_->insert_batch(batch, in(10s)));
  }

  std::string count() { return db_.scalar("SELECT count(*) FROM sluice_messages"); }

  static inline std::unique_ptr<test::scratch_database> shared_db_;
  test::scratch_database& db_;
  asio::io_context io_;
  std::unique_ptr<pg_pool> pool_;
  std::unique_ptr<message_store> store_;
  uuid_v7_generator ids_;
};

TEST_P(message_store_test, stores_new_rows_exactly_as_given) {
  message full = make("orders", "txn-1", "{ \"a\" :[1, 2.50,\"\\u00e9\"] ,\"b\":null }");
  full.partition = "p-7";
  full.namespace_ = "shop";
  full.task = "create";
  full.trace_id = "trace-abc";
  full.created_ms = 1'700'000'000'123;
  const message bare = make("orders", std::nullopt);
  const insert_result r = insert({full, bare});
  ASSERT_FALSE(r.ec) << r.message;
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.items[0].status, insert_status::stored);
  EXPECT_EQ(r.items[0].id, full.id);
  EXPECT_EQ(r.items[1].status, insert_status::stored);
  EXPECT_EQ(r.items[1].id, bare.id);

  const test::rows rows = db_.query(
      "SELECT id, queue, partition, namespace, task, trace_id, transaction_id, payload::text, "
      "(extract(epoch FROM created_at) * 1000)::bigint, "
      "(SELECT count(*) FROM sluice_relay_outbox o WHERE o.id = m.id) FROM sluice_messages m "
      "ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0], full.id.to_string());
  EXPECT_EQ(rows[0][1], "orders");
  EXPECT_EQ(rows[0][2], "p-7");
  EXPECT_EQ(rows[0][3], "shop");
  EXPECT_EQ(rows[0][4], "create");
  EXPECT_EQ(rows[0][5], "trace-abc");
  EXPECT_EQ(rows[0][6], "txn-1");
  EXPECT_EQ(rows[0][7], full.payload) << "json keeps the client's bytes";
  EXPECT_EQ(rows[0][8], "1700000000123");
  EXPECT_EQ(rows[0][9], "1") << "stored rows wait in the relay outbox";
  EXPECT_EQ(rows[1][9], "1");
  EXPECT_EQ(rows[1][3], std::nullopt);
  EXPECT_EQ(rows[1][6], std::nullopt);
}

TEST_P(message_store_test, same_transaction_id_in_a_later_batch_is_a_duplicate) {
  const message first = make("orders", "txn-1");
  ASSERT_FALSE(insert({first}).ec);
  const message again = make("orders", "txn-1");
  const message other_queue = make("invoices", "txn-1");
  const message fresh = make("orders", "txn-2");
  const insert_result r = insert({again, other_queue, fresh});
  ASSERT_FALSE(r.ec) << r.message;
  EXPECT_EQ(r.items[0].status, insert_status::duplicate);
  EXPECT_EQ(r.items[0].id, first.id) << "the existing row's id";
  EXPECT_EQ(r.items[1].status, insert_status::stored) << "idempotency is per queue";
  EXPECT_EQ(r.items[2].status, insert_status::stored);
  EXPECT_EQ(count(), "3");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM sluice_relay_outbox"), "3")
      << "a duplicate adds no outbox row";
}

TEST_P(message_store_test, repeats_inside_one_batch_are_duplicates_of_the_first) {
  const message stored = make("orders", "old");
  ASSERT_FALSE(insert({stored}).ec);
  const message a = make("orders", "txn-1");
  const message b = make("orders", "txn-1");
  const message c = make("orders", "old");
  const message d = make("orders", "old");
  const message no_txn_1 = make("orders", std::nullopt);
  const message no_txn_2 = make("orders", std::nullopt);
  const insert_result r = insert({a, b, c, d, no_txn_1, no_txn_2, a});
  ASSERT_FALSE(r.ec) << r.message;
  ASSERT_EQ(r.items.size(), 7u);
  EXPECT_EQ(r.items[0].status, insert_status::stored);
  EXPECT_EQ(r.items[1].status, insert_status::duplicate);
  EXPECT_EQ(r.items[1].id, a.id);
  EXPECT_EQ(r.items[2].status, insert_status::duplicate);
  EXPECT_EQ(r.items[2].id, stored.id);
  EXPECT_EQ(r.items[3].status, insert_status::duplicate);
  EXPECT_EQ(r.items[3].id, stored.id) << "a repeat of a repeat points at the stored row";
  EXPECT_EQ(r.items[4].status, insert_status::stored);
  EXPECT_EQ(r.items[5].status, insert_status::stored) << "no transactionId, no idempotency";
  EXPECT_EQ(r.items[6].status, insert_status::duplicate);
  EXPECT_EQ(r.items[6].id, a.id);
  EXPECT_EQ(count(), "4");
}

TEST_P(message_store_test, a_replayed_record_is_a_duplicate_of_itself) {
  const message with_txn = make("orders", "txn-1");
  const message without_txn = make("orders", std::nullopt);
  ASSERT_FALSE(insert({with_txn, without_txn}).ec);
  const message fresh = make("orders", "txn-9");
  const insert_result r = insert({fresh, without_txn, with_txn});
  ASSERT_FALSE(r.ec) << r.message;
  EXPECT_EQ(r.items[0].status, insert_status::stored);
  EXPECT_EQ(r.items[1].status, insert_status::duplicate);
  EXPECT_EQ(r.items[1].id, without_txn.id);
  EXPECT_EQ(r.items[2].status, insert_status::duplicate);
  EXPECT_EQ(r.items[2].id, with_txn.id);
  EXPECT_EQ(count(), "3");
}

TEST_P(message_store_test, rejected_data_names_the_item_and_stores_nothing) {
  std::vector<message> batch;
  for (int i = 0; i < 5; ++i)
    batch.push_back(make("orders", "txn-" + std::to_string(i)));
  batch[3].payload = "{not json";
  insert_result r = insert(batch);
  EXPECT_EQ(r.ec, errc::query_failed);
  EXPECT_EQ(r.failure(), failure_kind::rejected);
  EXPECT_EQ(r.sqlstate, "22P02");
  EXPECT_EQ(r.rejected_index, 3u);
  EXPECT_TRUE(r.items.empty());
  EXPECT_EQ(count(), "0");

  batch[3].payload = "{}";
  batch[1].queue = std::string("or\0ders", 7);
  r = insert(batch);
  EXPECT_EQ(r.failure(), failure_kind::rejected);
  EXPECT_EQ(r.rejected_index, 1u);
  EXPECT_EQ(count(), "0");

  batch[1].queue = "orders";
  r = insert(batch);
  EXPECT_FALSE(r.ec) << r.message;
  EXPECT_EQ(count(), "5");
}

TEST_P(message_store_test, large_batches_keep_input_order) {
  // Items 450..499 repeat the (queue, transactionId) of item i - 450.
  std::vector<message> batch;
  for (int i = 0; i < 500; ++i) {
    batch.push_back(make("q" + std::to_string(i % 5), "t" + std::to_string(i % 450),
                         R"({"i":)" + std::to_string(i) + "}"));
  }
  const insert_result r = insert(batch);
  ASSERT_FALSE(r.ec) << r.message;
  ASSERT_EQ(r.items.size(), 500u);
  for (int i = 0; i < 500; ++i) {
    if (i < 450) {
      EXPECT_EQ(r.items[i].status, insert_status::stored) << i;
      EXPECT_EQ(r.items[i].id, batch[i].id) << i;
    } else {
      EXPECT_EQ(r.items[i].status, insert_status::duplicate) << i;
      EXPECT_EQ(r.items[i].id, batch[i - 450].id) << i;
    }
  }
  EXPECT_EQ(count(), "450");
}

TEST_P(message_store_test, an_empty_batch_is_a_no_op) {
  const insert_result r = insert({});
  EXPECT_FALSE(r.ec);
  EXPECT_TRUE(r.items.empty());
}

TEST_P(message_store_test, pool_errors_come_back_as_unavailable_or_overloaded) {
  pool_options o;
  o.connection.conninfo =
      test::with_options(db_.conninfo(), {{"host", "127.0.0.1"}, {"port", "1"}});
  pg_pool dead(io_.get_executor(), o);
  message_store store(dead, message_store_options{GetParam()});
  const insert_result r =
      test::run(io_, store.insert_batch({make("orders", std::nullopt)}, in(5s)));
  EXPECT_EQ(r.ec, errc::connection_failed);
  EXPECT_EQ(r.failure(), failure_kind::unavailable);
  EXPECT_EQ(test::run(io_, store.ping(in(1s))), errc::connection_failed);
}

INSTANTIATE_TEST_SUITE_P(strategies, message_store_test,
                         ::testing::Values(insert_strategy::unnest,
                                           insert_strategy::pipelined_rows),
                         [](const ::testing::TestParamInfo<insert_strategy>& p) {
                           return p.param == insert_strategy::unnest ? "unnest" : "pipelined_rows";
                         });

}  // namespace
}  // namespace sluice::store
