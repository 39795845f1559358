#pragma once

#include "sluice/http/router.hpp"
#include "sluice/routing/route_lookup.hpp"

namespace sluice::api {

// GET /api/v1/routes/resolve?tenant=&service=&env=&version= (the seed's resolve):
//   200 {"url":"…"}                 an active route
//   404 route_not_found             no route, or an inactive one (also from the negative cache)
//   400 invalid_request             a parameter missing or not a valid name, named
//   503 route_registry_unavailable  PostgreSQL cannot answer and nothing usable is cached;
//                                   Retry-After: retry_after_seconds
void add_route_resolve_routes(http::router& routes, routing::route_lookup& lookup,
                              int retry_after_seconds = 1);

}  // namespace sluice::api
