#include "sluice/services/route_target.hpp"

namespace sluice::services {

const char* to_string(target_source s) {
  switch (s) {
    case target_source::route:
      return "route";
    case target_source::url:
      return "url";
    case target_source::no_route:
      return "no_route";
    case target_source::unavailable:
      return "unavailable";
  }
  return "unknown";
}

target_source choose_target(const routing::resolve_outcome& outcome, bool has_url) {
  if (outcome.url)
    return target_source::route;
  if (has_url)
    return target_source::url;
  return outcome.result == routing::resolve_result::unavailable ? target_source::unavailable
                                                                : target_source::no_route;
}

boost::asio::awaitable<routing::resolve_outcome> resolve_route(routing::route_lookup* lookup,
                                                               const routing::route_key& key) {
  if (!lookup) {
    routing::resolve_outcome none;
    none.result = routing::resolve_result::miss;
    co_return none;
  }
  co_return co_await lookup->resolve(key);
}

}  // namespace sluice::services
