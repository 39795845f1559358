#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/routing/route.hpp"
#include "sluice/store/pg_connection.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::routing {

// One change of the registry (a row of sluice_route_events): the audit log, the change log the
// instances catch up from, and what is published to the sluice.route-events exchange.
struct route_event {
  std::int64_t id = 0;
  std::int64_t registry_version = 0;
  std::string action;  // created, updated, activated, deactivated, deleted
  route_key key;
  std::optional<route> before;  // nullopt when created
  std::optional<route> after;   // nullopt when deleted
  std::string actor;
  std::chrono::system_clock::time_point created_at{};
};

// The audit item of GET /api/v1/routes/events and the exchange's message body:
// {"id","registry_version","action","tenant","service","env","version","before","after",
//  "actor","created_at"} (before/after: the route object or null).
std::string to_json(const route_event& e);

// A route object as to_json(route) writes it and as the events' before/after columns hold it
// (any RFC 3339 times, keys in any order); nullopt when a field is missing or of another type.
std::optional<route> parse_route_json(std::string_view text);

enum class change_outcome {
  done,
  conflict,   // create: the key exists
  not_found,  // the key does not exist
  failed,     // PostgreSQL could not answer: status says why
};

struct change_result {
  change_outcome outcome = change_outcome::failed;
  store::statement_status status;
  std::optional<route> stored;  // the route after the change (before it, for a delete)
  std::int64_t registry_version = 0;
};

struct lookup_result {
  store::statement_status status;
  std::optional<route> found;  // nullopt: no row (an inactive row is found, is_active false)
  // The registry version the read saw (the same snapshot): a cache must not keep a result older
  // than an invalidation it applied meanwhile.
  std::int64_t registry_version = 0;
};

struct events_result {
  store::statement_status status;
  std::vector<route_event> events;  // ascending registry_version (list_events: descending)
};

struct route_filter {
  std::optional<std::string> tenant, service, env, version;
  std::optional<bool> active;
};

struct list_result {
  store::statement_status status;
  std::vector<route> routes;  // ascending key (tenant, service, env, version)
};

struct event_filter {
  std::optional<std::string> tenant, service, env, version, action;
  std::optional<std::chrono::system_clock::time_point> start_time;  // inclusive
  std::optional<std::chrono::system_clock::time_point> end_time;    // exclusive
};

// sluice_routes and sluice_route_events (migration 7). Every change is one statement, so one
// transaction: it writes the route, bumps sluice_route_registry.version (whose row lock orders
// the changes), writes the audit/change row and NOTIFYs 'sluice_routes' with the new registry
// version; the notification leaves at the commit. One round trip per call.
class route_store {
 public:
  explicit route_store(store::pg_pool& pool);

  boost::asio::awaitable<change_result> create(const route_key& key, std::string_view url,
                                               std::string_view actor,
                                               store::clock::time_point deadline);
  boost::asio::awaitable<change_result> update_url(const route_key& key, std::string_view url,
                                                   std::string_view actor,
                                                   store::clock::time_point deadline);
  // Setting the state it already has is done, with no event and no version bump.
  boost::asio::awaitable<change_result> set_active(const route_key& key, bool active,
                                                   std::string_view actor,
                                                   store::clock::time_point deadline);
  boost::asio::awaitable<change_result> remove(const route_key& key, std::string_view actor,
                                               store::clock::time_point deadline);

  boost::asio::awaitable<lookup_result> lookup(const route_key& key,
                                               store::clock::time_point deadline);

  // The registry's version now (readiness, catch-up start).
  boost::asio::awaitable<std::pair<store::statement_status, std::int64_t>> current_version(
      store::clock::time_point deadline);

  // Routes matching `filter` whose key is after `after` (a page's last key), at most `limit`,
  // ascending by key.
  boost::asio::awaitable<list_result> list(const route_filter& filter,
                                           const std::optional<route_key>& after, std::size_t limit,
                                           store::clock::time_point deadline);

  // The audit log: events matching `filter` with registry_version below `before_version` (a
  // page's last one), at most `limit`, newest first (descending registry_version).
  boost::asio::awaitable<events_result> list_events(const event_filter& filter,
                                                    std::optional<std::int64_t> before_version,
                                                    std::size_t limit,
                                                    store::clock::time_point deadline);

  // Changes after `after_version`, at most `limit`, ascending; on the follower's own
  // connection (it holds LISTEN) or the pool.
  static boost::asio::awaitable<events_result> events_since(store::pg_connection& conn,
                                                            std::int64_t after_version,
                                                            std::size_t limit,
                                                            store::clock::time_point deadline);
  boost::asio::awaitable<events_result> events_since(std::int64_t after_version, std::size_t limit,
                                                     store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
};

}  // namespace sluice::routing
