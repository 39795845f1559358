#pragma once

#include "sluice/http/router.hpp"
#include "sluice/relay/queue_modes.hpp"

namespace sluice::delivery {
class subscription_catalog;
}

namespace sluice::api {

// PUT /api/v1/queues/{queue} {"mode":"queue"|"broadcast"} and GET /api/v1/queues/{queue}: how
// a sluice queue's messages reach RabbitMQ (see relay::queue_mode). Stored in PostgreSQL, so
// every instance on the database follows it (within its refresh interval). With
// `subscriptions`, a switch to queue mode is refused (409) while the queue has two or more
// subscriptions, or one with "ordering":"partition".
void add_queue_routes(http::router& routes, relay::queue_modes& modes,
                      delivery::subscription_catalog* subscriptions = nullptr);

}  // namespace sluice::api
