#pragma once

#include <functional>

#include "sluice/http/router.hpp"
#include "sluice/requests/request_status.hpp"

namespace sluice::requests {

// GET /api/v1/requests/{id}: the status of an async request (status_answer documents the
// answers); 400 invalid_request_id when {id} is not a uuid. `buffer_unreplayed` says whether
// this instance's failover file buffer still holds records to replay.
void add_request_routes(http::router& routes, request_status_reader& reader,
                        std::function<bool()> buffer_unreplayed);

}  // namespace sluice::requests
