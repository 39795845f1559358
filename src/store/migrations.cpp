#include "sluice/store/migrations.hpp"

#include <algorithm>
#include <array>

#include <spdlog/spdlog.h>

namespace sluice::store {
namespace asio = boost::asio;

namespace {

// Key of the advisory lock serialising migrations: "sluice" in ASCII.
constexpr std::string_view lock_and_read = R"sql(
BEGIN;
SELECT pg_advisory_xact_lock(126875341464421);
-- A long migration is bounded by the caller's deadline, not by the session's statement timeout.
SET LOCAL statement_timeout = 0;
CREATE TABLE IF NOT EXISTS sluice_schema_migrations (
  version int PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
SELECT version FROM sluice_schema_migrations ORDER BY version;
)sql";

constexpr std::array<migration, 5> all_migrations{{
    {1, "messages", R"sql(
CREATE TABLE sluice_messages (
  id uuid PRIMARY KEY,               -- uuidv7 minted by sluice at acceptance: time-ordered
  queue text NOT NULL,
  partition text NOT NULL,
  namespace text,
  task text,
  trace_id text,
  transaction_id text,
  payload json NOT NULL,             -- json, not jsonb: the exact bytes the client sent are kept
  created_at timestamptz NOT NULL,   -- acceptance time (message.created_ms)
  stored_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz           -- set by the RabbitMQ relay
);
-- Idempotency: one row per (queue, transactionId); inserts use ON CONFLICT DO NOTHING.
CREATE UNIQUE INDEX sluice_messages_queue_txn ON sluice_messages (queue, transaction_id)
  WHERE transaction_id IS NOT NULL;
-- Listing a queue's partition in acceptance order.
CREATE INDEX sluice_messages_queue_partition_id ON sluice_messages (queue, partition, id);
-- The relay's sweeper: rows not yet published, oldest first; small because most rows are.
CREATE INDEX sluice_messages_unpublished ON sluice_messages (id) WHERE published_at IS NULL;
)sql"},
    {2, "relay", R"sql(
-- The sweeper's claim: while it is in the future, other instances' sweepers skip the row.
-- NULL for rows only the in-memory path has seen; no index of its own, because the claim
-- query walks sluice_messages_unpublished and filters on it.
ALTER TABLE sluice_messages ADD COLUMN relay_claimed_until timestamptz;
-- Per-queue relay settings (PUT /api/v1/queues/{queue}); a queue without a row is in queue mode.
CREATE TABLE sluice_queues (
  queue text PRIMARY KEY,
  mode text NOT NULL CHECK (mode IN ('queue', 'broadcast')),
  updated_at timestamptz NOT NULL DEFAULT now()
);
)sql"},
    {3, "relay_outbox", R"sql(
-- Publish bookkeeping moves out of the messages table: a row here means "not yet confirmed by
-- RabbitMQ". The push path adds it in the statement that stores the message; a confirm deletes
-- it. Marking used to be an UPDATE of the wide message row that could never be HOT (the partial
-- index named published_at), writing every message twice; a narrow insert plus a delete cost
-- PostgreSQL a fraction of that (BENCHMARKS.md, Relay). (A statement trigger filling the
-- outbox cost 10 % of push and replay throughput, so the insert statement does it.)
-- No writer may slip in between the copy below and the end of this migration. Instances of a
-- build before it must be stopped first: their rows would get no outbox row (README, upgrading).
LOCK TABLE sluice_messages IN ACCESS EXCLUSIVE MODE;
CREATE TABLE sluice_relay_outbox (
  id uuid PRIMARY KEY,               -- sluice_messages.id
  stored_at timestamptz NOT NULL DEFAULT now(),
  claimed_until timestamptz          -- a sweeper's claim; other instances skip the row until then
);
INSERT INTO sluice_relay_outbox (id, stored_at, claimed_until)
  SELECT id, stored_at, relay_claimed_until FROM sluice_messages WHERE published_at IS NULL;
DROP INDEX sluice_messages_unpublished;
ALTER TABLE sluice_messages DROP COLUMN published_at, DROP COLUMN relay_claimed_until;
)sql"},
    {4, "services", R"sql(
-- Services of the request proxy (PUT /api/v1/services/{service}); `spec` is the service's JSON
-- as the API answers it, `schedule` its traffic schedule. Every change notifies channel
-- sluice_services with the service name, in the writing transaction, so every instance that
-- LISTENs reloads that one service within a second of the commit.
CREATE TABLE sluice_services (
  name text PRIMARY KEY,
  spec jsonb NOT NULL,
  schedule jsonb,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION sluice_services_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_services', COALESCE(NEW.name, OLD.name));
  RETURN NULL;
END $$;
CREATE TRIGGER sluice_services_changed AFTER INSERT OR UPDATE OR DELETE ON sluice_services
  FOR EACH ROW EXECUTE FUNCTION sluice_services_notify();
)sql"},
    {5, "rpc_responses", R"sql(
-- Outcomes of async proxy requests (Prefer: respond-async). The request itself is a message of
-- the push path (sluice_messages); a row here means a worker finished it.
CREATE TABLE sluice_rpc_responses (
  id uuid PRIMARY KEY,
  status text NOT NULL CHECK (status IN ('done', 'failed')),
  response jsonb,
  error jsonb,
  completed_at timestamptz NOT NULL DEFAULT now()
);
)sql"},
}};

std::string quoted(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace

std::span<const migration> migrations() {
  return all_migrations;
}

asio::awaitable<migration_result> apply_migrations(pg_connection& conn,
                                                   clock::time_point deadline) {
  migration_result out;
  const auto failed = [&](const pg_result& r) {
    out.ec = r.ec;
    out.message = r.message.empty() ? r.ec.message() : r.message;
  };

  pg_result r = co_await conn.execute(lock_and_read, deadline);
  if (r.ec) {
    failed(r);
    if (conn.is_open())
      co_await conn.execute("ROLLBACK", deadline);
    co_return out;
  }
  std::vector<int> present;
  for (const auto& row : r.rows)
    present.push_back(row.at(0) ? std::stoi(*row.at(0)) : 0);

  for (const migration& m : all_migrations) {
    if (std::find(present.begin(), present.end(), m.version) != present.end())
      continue;
    std::string sql(m.sql);
    sql += ";\nINSERT INTO sluice_schema_migrations (version, name) VALUES (" +
           std::to_string(m.version) + ", " + quoted(m.name) + ");";
    r = co_await conn.execute(sql, deadline);
    if (r.ec) {
      failed(r);
      out.message = "migration " + std::to_string(m.version) + " (" + std::string(m.name) +
                    "): " + out.message;
      // The transaction is aborted; leave the connection clean for whoever uses it next.
      if (conn.is_open())
        co_await conn.execute("ROLLBACK", deadline);
      co_return out;
    }
    out.applied.push_back(m.version);
    present.push_back(m.version);
  }
  r = co_await conn.execute("COMMIT", deadline);
  if (r.ec) {
    failed(r);
    out.applied.clear();
    co_return out;
  }
  out.schema_version = present.empty() ? 0 : *std::max_element(present.begin(), present.end());
  const int known = all_migrations.back().version;
  if (out.schema_version > known) {
    spdlog::warn("store: schema is newer than this build schema_version={} known_version={}",
                 out.schema_version, known);
  }
  co_return out;
}

asio::awaitable<migration_result> apply_migrations(pg_pool& pool, clock::time_point deadline) {
  auto [ec, lease] = co_await pool.acquire(deadline);
  if (ec) {
    migration_result out;
    out.ec = ec;
    out.message = ec.message();
    co_return out;
  }
  co_return co_await apply_migrations(*lease, deadline);
}

}  // namespace sluice::store
