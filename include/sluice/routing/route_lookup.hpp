#pragma once

#include <optional>
#include <string>

#include "sluice/routing/route.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::routing {

// How a resolve was answered (sluice_route_resolve_total{result}).
enum class resolve_result {
  hit,           // an active route from the cache, within its TTL
  miss,          // not cached (or expired): asked PostgreSQL (or joined a query in flight)
  negative_hit,  // cached as missing or inactive, within APP_NEGATIVE_CACHE_TTL
  stale,         // PostgreSQL could not answer; a cached route past its TTL, within the bound
  unavailable,   // PostgreSQL could not answer and nothing usable is cached
};
const char* to_string(resolve_result r);

struct resolve_outcome {
  resolve_result result = resolve_result::unavailable;
  // The active route's url; nullopt = no active route (or unavailable).
  std::optional<std::string> url;
  std::string error;  // why it is unavailable (logs)
};

// What the proxy's workers and the delivery workers resolve their targets through: the
// resolver in production, a fake in unit tests. Loop thread only.
class route_lookup {
 public:
  virtual ~route_lookup() = default;
  virtual boost::asio::awaitable<resolve_outcome> resolve(route_key key) = 0;
};

}  // namespace sluice::routing
