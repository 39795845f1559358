#pragma once

#include "sluice/http/router.hpp"
#include "sluice/push/push_request.hpp"
#include "sluice/push/push_service.hpp"

namespace sluice::api {

// POST /api/v1/push, GET /api/v1/status/buffers, POST /api/v1/status/buffers/retry-failed.
void add_push_routes(http::router& routes, push::push_service& service, push::push_limits limits);

}  // namespace sluice::api
