#pragma once

#include "sluice/http/router.hpp"
#include "sluice/services/service_catalog.hpp"

namespace sluice::api {

// The services API (README, "Services"):
//   PUT/GET/DELETE /api/v1/services/{service}
//   GET /api/v1/services?limit=&cursor=&namespace=   (the list format, ordered by name)
//   PUT/GET/DELETE /api/v1/services/{service}/schedule
// Reads answer from this instance's registry (what its proxy uses); writes go to PostgreSQL
// and are applied to the registry at once, other instances follow by notification.
void add_service_routes(http::router& routes, services::service_catalog& catalog);

}  // namespace sluice::api
