#include <chrono>
#include <optional>

#include "sluice/store/migrations.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <gtest/gtest.h>

#include "store_test_support.hpp"

namespace sluice::store {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::in;

class migrations_test : public ::testing::Test {
 protected:
  pool_options options() const {
    pool_options o;
    o.connection.conninfo = db_.conninfo();
    return o;
  }

  test::scratch_database db_;
  asio::io_context io_;
};

TEST(migrations, versions_are_consecutive_from_one) {
  int expected = 1;
  for (const migration& m : migrations()) {
    EXPECT_EQ(m.version, expected++);
    EXPECT_FALSE(m.name.empty());
    EXPECT_FALSE(m.sql.empty());
  }
}

TEST_F(migrations_test, applies_once_then_is_idempotent) {
  pg_pool pool(io_.get_executor(), options());
  const migration_result first = test::run(io_, apply_migrations(pool, in(10s)));
  EXPECT_FALSE(first.ec) << first.message;
  EXPECT_EQ(first.applied, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(first.schema_version, 8);

  const migration_result second = test::run(io_, apply_migrations(pool, in(10s)));
  EXPECT_FALSE(second.ec) << second.message;
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.schema_version, 8);

  EXPECT_EQ(
      db_.scalar("SELECT string_agg(version || ':' || name, ',') FROM "
                 "sluice_schema_migrations"),
      "1:messages,2:relay,3:relay_outbox,4:services,5:rpc_responses,6:deliveries,7:routes,8:query");
  EXPECT_EQ(db_.scalar("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY "
                       "ordinal_position) FROM information_schema.columns WHERE table_name = "
                       "'sluice_messages'"),
            "id uuid, queue text, partition text, namespace text, task text, trace_id text, "
            "transaction_id text, payload json, created_at timestamp with time zone, stored_at "
            "timestamp with time zone, event_time timestamp with time zone");
  EXPECT_EQ(db_.scalar("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY "
                       "ordinal_position) FROM information_schema.columns WHERE table_name = "
                       "'sluice_relay_outbox'"),
            "id uuid, stored_at timestamp with time zone, claimed_until timestamp with time zone");
  EXPECT_EQ(db_.scalar("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
                       "WHERE tablename = 'sluice_messages'"),
            "sluice_messages_pkey,sluice_messages_queue_partition_time,sluice_messages_queue_time,"
            "sluice_messages_queue_txn");
  // The query API's cursor key: made once, 32 random bytes.
  EXPECT_EQ(db_.scalar("SELECT length(key) FROM sluice_keys WHERE name = 'query_cursor'"), "32");
}

TEST_F(migrations_test, version_3_moves_unpublished_rows_and_their_claims_into_the_outbox) {
  // A database as sluice left it at schema version 2: published, unpublished and claimed rows.
  db_.query(
      "CREATE TABLE sluice_schema_migrations (version int PRIMARY KEY, name text NOT NULL, "
      "applied_at timestamptz NOT NULL DEFAULT now())");
  for (const migration& m : migrations()) {
    if (m.version > 2)
      break;
    db_.query(std::string(m.sql));
    db_.query("INSERT INTO sluice_schema_migrations (version, name) VALUES (" +
              std::to_string(m.version) + ", '" + std::string(m.name) + "')");
  }
  db_.query(
      "INSERT INTO sluice_messages (id, queue, partition, payload, created_at, stored_at, "
      "published_at, relay_claimed_until) VALUES "
      "('01900000-0000-7000-8000-000000000001', 'q', 'p', '1', now(), now() - interval '1 h', "
      "now(), NULL), "
      "('01900000-0000-7000-8000-000000000002', 'q', 'p', '2', now(), now() - interval '2 h', "
      "NULL, NULL), "
      "('01900000-0000-7000-8000-000000000003', 'q', 'p', '3', now(), now() - interval '3 h', "
      "NULL, '2030-01-01 00:00:00+00')");

  pg_pool pool(io_.get_executor(), options());
  const migration_result r = test::run(io_, apply_migrations(pool, in(10s)));
  ASSERT_FALSE(r.ec) << r.message;
  EXPECT_EQ(r.applied, (std::vector<int>{3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(db_.scalar("SELECT string_agg(right(id::text, 1) || ' ' || "
                       "(claimed_until IS NOT NULL)::text, ',' ORDER BY id) FROM "
                       "sluice_relay_outbox"),
            "2 false,3 true")
      << "only the unpublished rows, with their claims";
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM sluice_relay_outbox o JOIN sluice_messages m ON "
                       "m.id = o.id WHERE o.stored_at = m.stored_at"),
            "2");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM sluice_messages"), "3") << "no message is lost";
}

TEST_F(migrations_test, concurrent_instances_apply_each_version_once) {
  // Two pools stand for two sluice instances starting at the same moment.
  pg_pool a(io_.get_executor(), options());
  pg_pool b(io_.get_executor(), options());
  std::optional<migration_result> ra, rb;
  asio::co_spawn(io_, apply_migrations(a, in(10s)),
                 [&](std::exception_ptr, migration_result r) { ra = std::move(r); });
  asio::co_spawn(io_, apply_migrations(b, in(10s)),
                 [&](std::exception_ptr, migration_result r) { rb = std::move(r); });
  io_.run();
  ASSERT_TRUE(ra && rb);
  EXPECT_FALSE(ra->ec) << ra->message;
  EXPECT_FALSE(rb->ec) << rb->message;
  EXPECT_EQ(ra->applied.size() + rb->applied.size(), 8u) << "each version applied exactly once";
  EXPECT_EQ(ra->schema_version, 8);
  EXPECT_EQ(rb->schema_version, 8);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM sluice_schema_migrations"), "8");
}

}  // namespace
}  // namespace sluice::store
