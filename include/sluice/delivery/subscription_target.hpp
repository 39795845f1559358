#pragma once

#include <string>

#include "sluice/delivery/subscription.hpp"
#include "sluice/routing/route_lookup.hpp"
#include "sluice/services/route_target.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

// Where one delivery (or batch) of a subscription with a route goes.
struct subscription_target {
  target_address address;  // when `error` is empty
  // Set: no target, the attempt fails retryably with this error ("no_route: …",
  // "route_unavailable: …", or the route's url unusable): a route may be being changed, so it is
  // never a dead letter by itself (only once the attempts are exhausted, as any retry).
  std::string error;
  services::target_source source = services::target_source::no_route;
};

// The rule of services::choose_target for a subscription with a route (`s.route` set): the
// active route's url (as written, path and query included) wins over the url (batch mode: the
// batch url). `lookup` nullptr: no registry, the route never resolves.
boost::asio::awaitable<subscription_target> choose_subscription_target(
    routing::route_lookup* lookup, const subscription& s, bool batch);

}  // namespace sluice::delivery
