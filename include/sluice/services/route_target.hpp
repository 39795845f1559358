#pragma once

#include <string_view>

#include "sluice/routing/route.hpp"
#include "sluice/routing/route_lookup.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::services {

// The error codes of a call whose target could not be found through the route registry: the
// proxy's JSON error code (502 no_route, 503 route_unavailable) and a delivery attempt's error.
inline constexpr std::string_view no_route_error = "no_route";
inline constexpr std::string_view route_unavailable_error = "route_unavailable";

// Where the call of a flavour or subscription with a route goes.
enum class target_source {
  route,        // the active route's url
  url,          // the configured url: no active route, or the registry could not answer
  no_route,     // no active route (or no registry) and no url
  unavailable,  // the registry could not answer (PostgreSQL down, nothing cached) and no url
};
const char* to_string(target_source s);

// The one rule of the proxy's workers and the delivery workers (README, "Routes"): an active
// route wins; else the url when there is one; else no_route, or unavailable when the registry
// could not answer (told apart so that a client can tell "nothing is routed here" from "try
// again").
target_source choose_target(const routing::resolve_outcome& outcome, bool has_url);

// `lookup`'s answer for `key`; without a registry (nullptr) "no active route" (a miss), so a
// flavour or subscription with only a route gets no_route.
boost::asio::awaitable<routing::resolve_outcome> resolve_route(routing::route_lookup* lookup,
                                                               const routing::route_key& key);

}  // namespace sluice::services
