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

constexpr std::array<migration, 8> all_migrations{{
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
    {6, "deliveries", R"sql(
-- Subscriptions of the delivery workers (PUT /api/v1/queues/{queue}/subscriptions/{name});
-- `spec` is the subscription's JSON as the API answers it (defaults filled in). A 410 from the
-- target, or an operator, pauses one: paused_at/paused_reason, cleared by .../resume. Every
-- change notifies channel sluice_subscriptions with "<queue>/<name>" (neither may contain '/')
-- in the writing transaction, so every instance that LISTENs re-reads that one row.
CREATE TABLE sluice_subscriptions (
  queue text NOT NULL,
  name text NOT NULL,
  spec jsonb NOT NULL,
  paused_at timestamptz,
  paused_reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (queue, name)
);
CREATE FUNCTION sluice_subscriptions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_subscriptions',
                    COALESCE(NEW.queue, OLD.queue) || '/' || COALESCE(NEW.name, OLD.name));
  RETURN NULL;
END $$;
CREATE TRIGGER sluice_subscriptions_changed AFTER INSERT OR UPDATE OR DELETE
  ON sluice_subscriptions FOR EACH ROW EXECUTE FUNCTION sluice_subscriptions_notify();

-- Deliveries waiting for a later attempt, and re-drives from the dead letters: the delayed
-- half of the delivery path lives here, not in memory and not in TTL'd RabbitMQ queues (whose
-- per-message expiry only happens at the queue's head, and whose dead-letter cycles RabbitMQ
-- may drop). A row is written before its RabbitMQ delivery is acked; when due, an instance
-- claims it (claimed_until, like the relay's outbox), publishes it to the subscription's
-- RabbitMQ queue with a confirm, then deletes it. A crash between two steps repeats a delivery,
-- never loses one. One row per message and subscription: a redelivered message that fails
-- again updates its row.
CREATE TABLE sluice_delivery_retries (
  queue text NOT NULL,
  subscription text NOT NULL,
  message_id uuid NOT NULL,
  attempt int NOT NULL,                -- the attempt number the next delivery will carry
  due_at timestamptz NOT NULL,
  origin text NOT NULL DEFAULT 'retry' CHECK (origin IN ('retry', 'redrive')),
  partition text NOT NULL,
  headers jsonb NOT NULL,              -- the message's AMQP headers (strings), as published
  created_ms bigint NOT NULL,          -- the message's acceptance time
  payload bytea NOT NULL,              -- the bytes as pushed
  first_attempt_at timestamptz,
  claimed_until timestamptz,
  PRIMARY KEY (queue, subscription, message_id)
);
CREATE INDEX sluice_delivery_retries_due ON sluice_delivery_retries (due_at);

-- Messages whose delivery failed for good (GET /api/v1/dlq). The message travels with the row
-- so that a re-drive needs nothing else.
CREATE TABLE sluice_dead_letters (
  id uuid NOT NULL,                    -- the message id
  queue text NOT NULL,
  subscription text NOT NULL,
  reason text NOT NULL,                -- attempts_exhausted, rejected (4xx), gone (410), ...
  last_status int,                     -- the target's last HTTP status; NULL: no response
  attempts int NOT NULL,
  first_attempt_at timestamptz NOT NULL,
  last_attempt_at timestamptz NOT NULL,
  response_excerpt text,               -- the start of the last response body (or the error)
  partition text NOT NULL,
  headers jsonb NOT NULL,
  created_ms bigint NOT NULL,
  payload bytea NOT NULL,
  dead_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, queue, subscription)
);
-- Listing in time order (keyset on dead_at, id), with or without queue/subscription filters.
CREATE INDEX sluice_dead_letters_time ON sluice_dead_letters (dead_at, id);
CREATE INDEX sluice_dead_letters_queue_time
  ON sluice_dead_letters (queue, subscription, dead_at, id);

-- Bulk re-drives (POST /api/v1/dlq/retry). A job moves matching dead letters into
-- sluice_delivery_retries in batches, each batch in one transaction with the job's progress
-- (cursor_at, cursor_id = the last row moved), so a job resumes after a crash exactly where it
-- stopped. It only takes rows dead before it was created (not_after), so messages that fail
-- again during the job are not re-driven twice by it.
CREATE TABLE sluice_dlq_jobs (
  id uuid PRIMARY KEY,
  filter jsonb NOT NULL,               -- {"queue","subscription","start_time","end_time"}
  dry_run boolean NOT NULL,
  rate_per_sec int,                    -- NULL: as fast as the batches go
  not_after timestamptz NOT NULL,
  matched bigint NOT NULL,
  redriven bigint NOT NULL DEFAULT 0,
  state text NOT NULL CHECK (state IN ('running', 'done', 'failed', 'cancelled')),
  error text,
  cursor_at timestamptz,
  cursor_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

-- One row per delivery attempt (GET /api/v1/messages/{id}/deliveries), written in batches;
-- rows older than DELIVERY_ATTEMPTS_RETENTION_HOURS are deleted.
CREATE TABLE sluice_delivery_attempts (
  message_id uuid NOT NULL,
  queue text NOT NULL,
  subscription text NOT NULL,
  attempt int NOT NULL,
  attempted_at timestamptz NOT NULL,
  outcome text NOT NULL,               -- delivered, retry, dead_lettered, deferred
  status int,                          -- NULL: no response (connect error, timeout)
  latency_ms double precision NOT NULL,
  error text
);
CREATE INDEX sluice_delivery_attempts_message ON sluice_delivery_attempts (message_id, attempted_at);
CREATE INDEX sluice_delivery_attempts_time ON sluice_delivery_attempts (attempted_at);
)sql"},
    {7, "routes", R"sql(
-- The route registry: (tenant, service, env, version) -> url, the route control plane's table.
CREATE TABLE sluice_routes (
  id bigserial NOT NULL UNIQUE,
  tenant text NOT NULL,
  service text NOT NULL,
  env text NOT NULL,
  version text NOT NULL,
  url text NOT NULL,
  is_active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  registry_version bigint NOT NULL,     -- the registry version of the last change of this row
  PRIMARY KEY (tenant, service, env, version)
);

-- One row; every change bumps it in the changing transaction and holds its row lock until the
-- commit, so committed versions are gap-free and grow in commit order: an instance that has
-- applied version N has every change up to N, and catches up with "registry_version > N".
CREATE TABLE sluice_route_registry (
  id int PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL
);
INSERT INTO sluice_route_registry (id, version) VALUES (1, 0);

-- The audit log and the change log in one: written in the changing transaction, read by every
-- instance to catch up by version, published to the sluice.route-events exchange (outbox:
-- published_at is set once RabbitMQ confirmed it).
CREATE TABLE sluice_route_events (
  id bigserial PRIMARY KEY,
  registry_version bigint NOT NULL UNIQUE,
  action text NOT NULL CHECK (action IN ('created', 'updated', 'activated', 'deactivated',
                                         'deleted')),
  tenant text NOT NULL,
  service text NOT NULL,
  env text NOT NULL,
  version text NOT NULL,
  before jsonb,                          -- the route before the change; NULL when created
  after jsonb,                           -- the route after it; NULL when deleted
  actor text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX sluice_route_events_key ON sluice_route_events (tenant, service, env, version, id);
CREATE INDEX sluice_route_events_time ON sluice_route_events (created_at);
CREATE INDEX sluice_route_events_unpublished ON sluice_route_events (registry_version)
  WHERE published_at IS NULL;
)sql"},
    {8, "query", R"sql(
-- The event time of a message: the ingest's time_field value (POST /api/v1/queues/{q}/ingest).
-- NULL means the acceptance time, created_at, so a push writes nothing here and adding the
-- column rewrites no row. Queries read coalesce(event_time, created_at) as eventTime.
ALTER TABLE sluice_messages ADD COLUMN event_time timestamptz;
-- The query API (GET /api/v1/queues/{queue}/messages) pages in (eventTime, id) order, with or
-- without a partition: one index each, so every page is a range scan that starts at the
-- cursor. The partition one also serves the partition listing (a loose index scan on its
-- prefix) and replaces (queue, partition, id), which no query used. Each costs the push path
-- one index entry per row (README, Query API). IF NOT EXISTS: an operator may have built them
-- beforehand with CREATE INDEX CONCURRENTLY, so that a large table is not locked for the build.
DROP INDEX sluice_messages_queue_partition_id;
CREATE INDEX IF NOT EXISTS sluice_messages_queue_time
  ON sluice_messages (queue, (coalesce(event_time, created_at)), id);
CREATE INDEX IF NOT EXISTS sluice_messages_queue_partition_time
  ON sluice_messages (queue, partition, (coalesce(event_time, created_at)), id);
-- Keys of this database's instances, shared by all of them: the query API signs its cursors
-- with 'query_cursor', so any instance behind a load balancer accepts another's cursors, and
-- a restart breaks none. 32 bytes from two gen_random_uuid() (244 random bits, built in
-- since PostgreSQL 13, no extension needed).
CREATE TABLE sluice_keys (
  name text PRIMARY KEY,
  key bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sluice_keys (name, key) VALUES ('query_cursor',
  decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
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
