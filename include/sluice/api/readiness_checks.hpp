#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "sluice/api/directory_watch.hpp"
#include "sluice/api/postgres_watch.hpp"
#include "sluice/api/readiness.hpp"
#include "sluice/api/readiness_verdict.hpp"
#include "sluice/delivery/subscription_consumer.hpp"
#include "sluice/push/push_service.hpp"
#include "sluice/routing/route_follower.hpp"
#include "sluice/store/pg_pool.hpp"
#include "sluice/worker/flavour_consumer.hpp"

namespace sluice::api {

// The checks the daemon registers, as functions of state something else keeps up to date, so a
// probe never waits for I/O.

// PostgreSQL takes pushes once the last ping reached it and the push path found the schema.
check_result postgres_check(const postgres_watch::state& probe, bool schema_ready);

struct buffer_limits {
  std::uint64_t max_bytes = 0;  // FILE_BUFFER_MAX_BYTES, of each log
  // Free space below which the failover log counts as full: a push that does not fit is refused
  // (buffer_full), so "room" means room for about the largest request.
  std::uint64_t headroom_bytes = 0;
  // An answer of the directory watch older than this means the file system stopped answering.
  std::chrono::milliseconds max_answer_age{5000};
};

// The failover log takes durable pushes while its directory is writable and has headroom; the
// check fails from 90% of max_bytes on (an operator should look before pushes are refused) and
// when the QoS0 log's directory is not writable. `dirs` lists the failover directory first,
// then the QoS0 one.
check_result buffer_check(const directory_watch::state& dirs, const push::buffers_status& status,
                          const buffer_limits& limits, directory_watch::clock::time_point now);

// The workers' consumers, one per service flavour: the check passes while every one consumes
// (none configured passes too); the detail names each as service/flavour with its state, so an
// operator sees which queue has no consumer and why. It never decides the code: workers do not
// acknowledge pushes.
check_result workers_check(const std::vector<worker::consumer_status>& consumers);

// The delivery consumers, one per subscription that is not paused: passes while every one
// consumes (none passes too); the detail names each as queue/name with its state and circuit.
// Like the workers' check, it never decides the code.
check_result deliveries_check(const std::vector<delivery::consumer_status>& consumers);

// The route registry as this instance follows it: passes while the follower's LISTEN connection
// is up and caught up. Fields: cache_entries, applied_version (null before the first catch-up),
// connected, events_arriving (connected, and a catch-up — each notification and the periodic
// full reload run one — within `max_sync_age`), events_applied, last_event_at, last_sync_at
// (RFC 3339 or null). Never decides the code.
check_with_fields registry_check(const routing::route_follower_status& follower,
                                 std::size_t cache_entries,
                                 std::chrono::system_clock::time_point now,
                                 std::chrono::seconds max_sync_age);

// The pushes' PostgreSQL pool with the seed's fields: initialized (the pool reached PostgreSQL
// on its last connect), min_connections (0: opened on demand), max_connections (DB_POOL_MAX),
// current_connections (open), available_connections (open and idle). Passes while the probe
// reaches PostgreSQL. Never decides the code (the postgres check does).
check_with_fields database_check(const store::pg_pool::counts& counts, std::size_t max_connections,
                                 bool initialized, const postgres_watch::state& probe);

}  // namespace sluice::api
