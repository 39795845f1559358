#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

#include "sluice/core/async_event.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/routing/route_cache.hpp"
#include "sluice/routing/route_lookup.hpp"
#include "sluice/routing/route_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::routing {

struct route_resolver_options {
  route_cache_options cache;
  // Each store lookup's deadline (DB_STATEMENT_TIMEOUT_MS).
  std::chrono::milliseconds lookup_timeout{5000};
  // Distinct keys being looked up at once. A cold key beyond it is not looked up: stale if
  // the cache allows, else unavailable (a burst of new keys must not take every connection).
  std::size_t max_inflight_keys = 256;
  // Resolves waiting for a lookup at once, over all keys; one more is answered the same way.
  std::size_t max_waiters = 10'000;
};

// The store's read, injected so the resolver runs against a fake in unit tests:
// route_store::lookup in production.
using route_lookup_fn = std::function<boost::asio::awaitable<lookup_result>(
    const route_key& key, std::chrono::steady_clock::time_point deadline)>;

// The route_lookup of the daemon: route_cache in front of the store, one lookup per cold key
// however many resolve it at once (single flight), the last known route while the store
// cannot answer (stale, within the cache's bound). Loop thread only.
//
// A cache hit is answered without suspending; resolve_cached() answers it without even a
// coroutine frame, for the workers' hot path. A miss starts (or joins) the key's flight: a
// coroutine of the resolver's own that asks the store once and wakes every waiter, so a caller
// that gives up does not take the answer from the others.
//
// Metrics: sluice_route_resolve_total{result=hit|miss|negative_hit|stale|unavailable},
// sluice_route_resolve_duration_seconds{result}, sluice_route_cache_entries,
// sluice_route_invalidations_total, sluice_route_cache_clears_total,
// sluice_route_lookups_total{result=ok|failed} (the store lookups the flights made),
// sluice_route_lookups_in_flight, sluice_route_lookup_waiters.
class route_resolver final : public route_lookup {
 public:
  using clock = std::chrono::steady_clock;

  route_resolver(boost::asio::any_io_executor executor, route_lookup_fn lookup,
                 route_resolver_options options, metrics::registry& metrics,
                 std::function<clock::time_point()> now = &clock::now);
  ~route_resolver() override;
  route_resolver(const route_resolver&) = delete;
  route_resolver& operator=(const route_resolver&) = delete;

  boost::asio::awaitable<resolve_outcome> resolve(route_key key) override;

  // A hit or a negative hit from the cache (counted like resolve()'s), or nullopt: then
  // co_await resolve().
  std::optional<resolve_outcome> resolve_cached(const route_key& key);

  // What the follower applies (each counts in sluice_route_invalidations_total).
  void apply(const route_event& event);
  void invalidate(const route_key& key, std::int64_t version);
  void clear(std::int64_t version);

  // Misses answer unavailable from now on; waits for the flights in flight to end.
  boost::asio::awaitable<void> stop();

  const route_cache& cache() const { return cache_; }
  std::size_t lookups_in_flight() const { return flights_.size(); }
  std::size_t waiters() const { return waiters_; }
  // Store lookups started since construction (tests).
  std::uint64_t lookups() const { return lookups_; }

 private:
  struct flight {
    bool done = false;
    bool ok = false;
    std::optional<std::string> url;
    std::string error;
    async_event finished;
  };

  boost::asio::awaitable<void> run_flight(route_key key, std::shared_ptr<flight> f);
  resolve_outcome answer_without_source(const route_key& key, clock::time_point now,
                                        std::string error);
  resolve_outcome count(resolve_outcome out, clock::time_point start);
  void update_gauges();

  boost::asio::any_io_executor executor_;
  route_lookup_fn lookup_;
  route_resolver_options options_;
  std::function<clock::time_point()> now_;
  route_cache cache_;
  std::unordered_map<route_key, std::shared_ptr<flight>, route_key_hash> flights_;
  std::size_t waiters_ = 0;
  std::uint64_t lookups_ = 0;
  bool stopping_ = false;
  async_event flights_ended_;

  struct result_metrics {
    metrics::counter* total = nullptr;
    metrics::histogram* duration = nullptr;
  };
  result_metrics by_result_[5];
  metrics::gauge& entries_;
  metrics::counter& invalidations_;
  metrics::counter& clears_;
  metrics::counter& lookups_ok_;
  metrics::counter& lookups_failed_;
  metrics::gauge& in_flight_;
  metrics::gauge& waiting_;
};

}  // namespace sluice::routing
