#include "sluice/routing/route_cache.hpp"

#include <algorithm>

namespace sluice::routing {

route_cache::route_cache(route_cache_options options) : options_(options) {
  options_.max_entries = std::max<std::size_t>(options_.max_entries, 1);
}

cache_view route_cache::view_of(const entry& e, clock::time_point now) const {
  cache_view v;
  if (!e.url) {
    v.state = now < e.expires ? cache_state::negative : cache_state::absent;
    return v;
  }
  v.url = *e.url;
  v.stale_until = e.expires + options_.stale_max;
  v.state = now < e.expires ? cache_state::positive : cache_state::expired;
  return v;
}

cache_view route_cache::find(const route_key& key, clock::time_point now) {
  const auto found = entries_.find(key);
  if (found == entries_.end())
    return {};
  const auto it = found->second;
  cache_view v = view_of(*it, now);
  switch (v.state) {
    case cache_state::positive:
    case cache_state::negative:
      lru_.splice(lru_.begin(), lru_, it);
      break;
    case cache_state::absent:
      erase(it);
      break;
    case cache_state::expired:
      // Past the stale bound it can never be served again: a lookup replaces it or nothing does.
      if (now >= v.stale_until) {
        erase(it);
        return {};
      }
      break;
  }
  return v;
}

std::optional<std::string> route_cache::stale(const route_key& key, clock::time_point now) const {
  const auto found = entries_.find(key);
  if (found == entries_.end())
    return std::nullopt;
  const cache_view v = view_of(*found->second, now);
  if (v.state == cache_state::positive || (v.state == cache_state::expired && now < v.stale_until))
    return v.url;
  return std::nullopt;
}

void route_cache::begin_fill(const route_key& key) {
  ++fills_[key].lookups;
}

void route_cache::abandon_fill(const route_key& key) {
  const auto it = fills_.find(key);
  if (it != fills_.end() && --it->second.lookups <= 0)
    fills_.erase(it);
}

void route_cache::fence_unknown(fill_state& f, std::int64_t version) {
  if (version >= f.fence) {
    f.fence = version;
    f.fence_known = false;
    f.fence_url.reset();
  }
}

cache_view route_cache::fill(const route_key& key, const std::optional<route>& found,
                             std::int64_t snapshot_version, clock::time_point now) {
  fill_state state;
  if (const auto it = fills_.find(key); it != fills_.end()) {
    state = it->second;
    if (--it->second.lookups <= 0)
      fills_.erase(it);
  }
  const auto current = entries_.find(key);
  const bool entry_newer = current != entries_.end() && current->second->version > snapshot_version;
  if (state.fence > snapshot_version || entry_newer) {
    // The read lost to newer content; the resolves that waited for it get that content too,
    // even when its TTL ran out while the lookup was in flight.
    cache_view v;
    if (current != entries_.end()) {
      v = view_of(*current->second, now);
      v.superseded = true;
    } else if (state.fence_known) {
      v.url = state.fence_url.value_or(std::string());
      v.superseded = true;
    }
    return v;
  }
  std::optional<std::string> url;
  if (found && found->is_active)
    url = found->url;
  if (!url && options_.negative_ttl.count() == 0) {
    if (current != entries_.end())
      erase(current->second);
    return {};
  }
  put(key, std::move(url), snapshot_version, now);
  return view_of(*entries_.find(key)->second, now);
}

bool route_cache::invalidate(const route_key& key, std::int64_t version) {
  if (const auto it = fills_.find(key); it != fills_.end())
    fence_unknown(it->second, version);
  const auto found = entries_.find(key);
  if (found == entries_.end() || found->second->version >= version)
    return false;
  erase(found->second);
  return true;
}

bool route_cache::apply(const route_event& event, clock::time_point now) {
  std::optional<std::string> url;
  if (event.after && event.after->is_active)
    url = event.after->url;
  const auto fill = fills_.find(event.key);
  const bool filling = fill != fills_.end();
  if (filling && event.registry_version >= fill->second.fence) {
    fill->second.fence = event.registry_version;
    fill->second.fence_known = true;
    fill->second.fence_url = url;
  }
  const auto found = entries_.find(event.key);
  if (found == entries_.end() && !filling)
    return false;
  if (found != entries_.end() && found->second->version >= event.registry_version)
    return false;
  if (!url && options_.negative_ttl.count() == 0) {
    if (found != entries_.end())
      erase(found->second);
    return found != entries_.end();
  }
  put(event.key, std::move(url), event.registry_version, now);
  return true;
}

void route_cache::clear(std::int64_t version) {
  lru_.clear();
  entries_.clear();
  for (auto& [key, state] : fills_)
    fence_unknown(state, version);
}

void route_cache::put(const route_key& key, std::optional<std::string> url, std::int64_t version,
                      clock::time_point now) {
  const auto ttl = url ? options_.positive_ttl : options_.negative_ttl;
  const auto expires = now + ttl;
  if (const auto found = entries_.find(key); found != entries_.end()) {
    auto it = found->second;
    it->url = std::move(url);
    it->version = version;
    it->expires = expires;
    lru_.splice(lru_.begin(), lru_, it);
    return;
  }
  lru_.push_front(entry{key, std::move(url), version, expires});
  entries_.emplace(key, lru_.begin());
  while (entries_.size() > options_.max_entries)
    erase(std::prev(lru_.end()));
}

void route_cache::erase(lru_list::iterator it) {
  entries_.erase(it->key);
  lru_.erase(it);
}

}  // namespace sluice::routing
