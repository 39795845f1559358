#pragma once

#include "sluice/http/router.hpp"
#include "sluice/relay/queue_modes.hpp"

namespace sluice::api {

// PUT /api/v1/queues/{queue} {"mode":"queue"|"broadcast"} and GET /api/v1/queues/{queue}: how
// a sluice queue's messages reach RabbitMQ (see relay::queue_mode). Stored in PostgreSQL, so
// every instance on the database follows it (within its refresh interval).
void add_queue_routes(http::router& routes, relay::queue_modes& modes);

}  // namespace sluice::api
