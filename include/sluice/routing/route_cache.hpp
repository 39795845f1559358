#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "sluice/routing/route.hpp"
#include "sluice/routing/route_store.hpp"

namespace sluice::routing {

struct route_cache_options {
  std::chrono::seconds positive_ttl{60};  // APP_POSITIVE_CACHE_TTL
  std::chrono::seconds negative_ttl{10};  // APP_NEGATIVE_CACHE_TTL; 0 = missing keys not cached
  std::size_t max_entries = 100'000;      // ROUTE_CACHE_MAX_ENTRIES
  std::chrono::seconds stale_max{300};    // ROUTE_STALE_MAX_SEC, past the positive TTL
};

// What the cache knows of a key at an instant.
enum class cache_state {
  absent,    // nothing cached (or only a negative entry past its TTL)
  positive,  // an active route, within the positive TTL
  negative,  // missing or inactive, within the negative TTL
  expired,   // an active route past its TTL: ask the source; served stale if it cannot answer
};

struct cache_view {
  cache_state state = cache_state::absent;
  std::string url;  // positive and expired
  // Until when an expired route may be served stale (positive TTL end + stale_max).
  std::chrono::steady_clock::time_point stale_until{};
  // fill() only: the lookup's read was older than what the cache knows (an event applied while
  // it was in flight, or a newer entry), and `url` is that newer content whatever TTL it has
  // left (empty: no active route). False for a dropped read whose newer content is unknown (a
  // clear or an invalidation fenced it): the read is then the only answer there is.
  bool superseded = false;
};

// The resolver's in-process cache: positive and negative entries with TTLs, at most
// max_entries of them (the least recently used goes first), and what the change events tell
// it. Pure: no I/O, the clock is every call's `now`. Loop thread only.
//
// Versions. Every entry remembers the registry version its content is from: the snapshot
// version of the lookup that filled it, or the version of the event that re-warmed it. A
// lookup announces itself with begin_fill() before it asks the source and ends with fill();
// an event or clear() applied between the two fences the key at the event's version, and a
// fill from an older snapshot is dropped (the newer content stays). Without the fence a slow
// lookup could put back a route a change event had just replaced, until its TTL.
class route_cache {
 public:
  using clock = std::chrono::steady_clock;

  explicit route_cache(route_cache_options options);

  // The key's state now; a positive hit becomes the most recently used. An expired route
  // past its stale bound, and a negative entry past its TTL, are dropped here.
  cache_view find(const route_key& key, clock::time_point now);

  // An expired route that may still be served now (the source failed), or nullopt.
  std::optional<std::string> stale(const route_key& key, clock::time_point now) const;

  // A lookup of `key` is about to ask the source. Every begin_fill has one fill or
  // abandon_fill. Lookups of one key are expected not to overlap (the resolver's single flight)
  // but nothing breaks if they do.
  void begin_fill(const route_key& key);
  // The lookup's answer, read at registry version `snapshot_version`: `found` is the row
  // (nullopt = no row; an inactive row is cached as negative). Dropped when an event or clear
  // newer than the snapshot was applied meanwhile, or when the entry is already newer. Answers
  // the key's state after it (`superseded`: what the lookup's waiters are told instead).
  cache_view fill(const route_key& key, const std::optional<route>& found,
                  std::int64_t snapshot_version, clock::time_point now);
  // The lookup failed: nothing to store.
  void abandon_fill(const route_key& key);

  // A change of `key` at registry version `version` whose new content is unknown: the entry
  // goes, and a lookup in flight is fenced. Answers whether an entry was removed.
  bool invalidate(const route_key& key, std::int64_t version);
  // A change event: a cached (or being filled) key takes the event's `after` (a deactivated or
  // deleted route becomes a negative entry) with fresh TTLs; a key the cache does not hold is
  // not added (an instance caches what it resolves, not the registry). An event not newer
  // than the entry is ignored (replays after a reconnect are harmless). Answers whether the
  // cache changed.
  bool apply(const route_event& event, clock::time_point now);
  // Everything goes (a catch-up too long to replay): lookups in flight are fenced at
  // `version`.
  void clear(std::int64_t version);

  std::size_t size() const { return entries_.size(); }
  std::size_t filling() const { return fills_.size(); }
  const route_cache_options& options() const { return options_; }

 private:
  struct entry {
    route_key key;
    std::optional<std::string> url;  // nullopt = negative
    std::int64_t version = 0;
    clock::time_point expires{};
  };
  using lru_list = std::list<entry>;  // most recently used first

  // Puts (or replaces) the key's entry as the most recently used and evicts past the bound.
  void put(const route_key& key, std::optional<std::string> url, std::int64_t version,
           clock::time_point now);
  void erase(lru_list::iterator it);
  cache_view view_of(const entry& e, clock::time_point now) const;

  route_cache_options options_;
  lru_list lru_;
  std::unordered_map<route_key, lru_list::iterator, route_key_hash> entries_;
  // Keys with a lookup in flight: how many, and the newest version an event or clear fenced
  // them at (0 = none), with that event's content (the entry it left may be evicted, and with
  // APP_NEGATIVE_CACHE_TTL=0 a deactivation leaves none).
  struct fill_state {
    int lookups = 0;
    std::int64_t fence = 0;
    bool fence_known = false;              // an event fenced it (not a clear or invalidation)
    std::optional<std::string> fence_url;  // that event's active url; nullopt = no route
  };
  static void fence_unknown(fill_state& f, std::int64_t version);
  std::unordered_map<route_key, fill_state, route_key_hash> fills_;
};

}  // namespace sluice::routing
