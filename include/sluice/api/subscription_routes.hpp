#pragma once

#include <functional>
#include <optional>
#include <string>

#include "sluice/delivery/subscription_catalog.hpp"
#include "sluice/http/router.hpp"
#include "sluice/relay/queue_modes.hpp"

#include <nlohmann/json.hpp>

namespace sluice::api {

// What the delivery engine knows of one subscription on this instance (consuming, inFlight,
// concurrencyLimit, circuit...); nullopt when it has nothing to say.
using subscription_status_provider =
    std::function<std::optional<nlohmann::json>(const std::string& queue, const std::string& name)>;

// The subscriptions API (README, "Delivery: subscriptions"):
//   PUT/GET/DELETE /api/v1/queues/{queue}/subscriptions/{name}   (PUT: 201 created, 200 replaced)
//   GET /api/v1/queues/{queue}/subscriptions?limit=&cursor=      (the list format, by name)
//   POST /api/v1/queues/{queue}/subscriptions/{name}/resume
// Writes go to PostgreSQL and are applied to this instance's registry at once; other instances
// follow by notification. Reads answer from the registry once the follower loaded it (from
// PostgreSQL before that). 409 subscription_conflict: a queue-mode queue (its configured mode,
// else DELIVERY_MODE) already has another subscription; 409 ordering_needs_broadcast:
// "ordering":"partition" on a queue-mode queue.
void add_subscription_routes(http::router& routes, delivery::subscription_catalog& catalog,
                             relay::queue_modes& modes,
                             subscription_status_provider status = nullptr);

}  // namespace sluice::api
