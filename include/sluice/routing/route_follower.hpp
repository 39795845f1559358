#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>

#include "sluice/metrics/registry.hpp"
#include "sluice/routing/route_resolver.hpp"
#include "sluice/routing/route_store.hpp"
#include "sluice/store/listen_follower.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::routing {

struct route_follower_options {
  store::listen_options listen;
  std::size_t page = 1000;  // events read per statement while catching up
  // A catch-up longer than this is not replayed: the cache is emptied and the follower goes on
  // from the registry's version (re-reading the cached keys costs less than the replay).
  std::int64_t max_catch_up = 10'000;
};

// The follower's reads on its own connection, injected for unit tests; route_store's in
// production (default_reads()).
struct route_follower_reads {
  std::function<boost::asio::awaitable<std::pair<store::statement_status, std::int64_t>>(
      store::pg_connection& conn, store::clock::time_point deadline)>
      current_version;
  std::function<boost::asio::awaitable<events_result>(store::pg_connection& conn,
                                                      std::int64_t after_version, std::size_t limit,
                                                      store::clock::time_point deadline)>
      events_since;
};
route_follower_reads default_reads();

// What readiness shows of the follower.
struct route_follower_status {
  bool connected = false;               // LISTEN is up and the catch-up after it ran
  std::optional<std::int64_t> applied;  // registry version applied; nullopt: never synced
  std::uint64_t events_applied = 0;     // change events applied since start
  std::optional<std::chrono::system_clock::time_point> last_event_at;  // the last one applied
  std::optional<std::chrono::system_clock::time_point> last_sync_at;   // the last catch-up
};

// Keeps the resolver's cache equal to the registry on every instance: a store::listen_follower
// on channel sluice_routes (each change NOTIFYs its new registry version in its transaction).
// Whether a notification or the follower's full reload (after every connect, and every
// full_reload_interval) woke it, it catches up the same way: the events after the version it
// has applied, in pages, each applied to the cache (the key re-warmed from the event's `after`),
// so a notification lost while the connection was down is made up for by version. The first
// catch-up starts from the registry's version now (history is not replayed) and empties the
// cache (what was filled before it was never fenced against the changes in between); one longer
// than max_catch_up empties the cache instead. Loop thread only.
//
// Metrics: sluice_route_registry_version (applied), the listen follower's
// sluice_routes_follower_* (connected, reloads, failures).
class route_follower {
 public:
  route_follower(boost::asio::any_io_executor executor, route_resolver& resolver,
                 route_follower_options options, metrics::registry& metrics,
                 route_follower_reads reads = default_reads());

  // Runs until stop(); co_spawn it.
  boost::asio::awaitable<void> run() { return follower_.run(); }
  void stop() { follower_.stop(); }
  boost::asio::awaitable<void> wait_stopped() { return follower_.wait_stopped(); }
  // A reconnect now instead of after the pause (the schema was just migrated).
  void poke() { follower_.poke(); }

  route_follower_status status() const;

  // One catch-up on `conn`: what a notification and a full reload run. `notified_version` is a
  // notification's version (nothing to do when it is applied already). False when a read
  // failed (what was applied before the failure stays applied).
  boost::asio::awaitable<bool> catch_up(store::pg_connection& conn,
                                        store::clock::time_point deadline,
                                        std::optional<std::int64_t> notified_version = {});

 private:
  store::listen_target target();
  void set_applied(std::int64_t version);

  route_resolver& resolver_;
  route_follower_options options_;
  route_follower_reads reads_;
  std::optional<std::int64_t> applied_;
  std::uint64_t events_applied_ = 0;
  std::optional<std::chrono::system_clock::time_point> last_event_at_;
  std::optional<std::chrono::system_clock::time_point> last_sync_at_;
  metrics::gauge& version_gauge_;
  store::listen_follower follower_;
};

}  // namespace sluice::routing
