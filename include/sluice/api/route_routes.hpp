#pragma once

#include <chrono>
#include <functional>

#include "sluice/http/router.hpp"
#include "sluice/routing/route_store.hpp"

namespace sluice::api {

struct route_api {
  routing::route_store& store;
  std::chrono::milliseconds statement_timeout{30000};
  // Runs after every change PostgreSQL committed (e.g. wakes this instance's event publisher
  // before its poll would). May be empty.
  std::function<void(const routing::change_result&)> on_change;
};

// The route registry's API (README, "Route registry"):
//   POST   /api/v1/routes             {"tenant","service","env","version","url"} -> 201
//   PUT    /api/v1/routes             {"tenant","service","env","version","url"} -> 200
//   POST   /api/v1/routes/activate    {"tenant","service","env","version"} -> 200
//   POST   /api/v1/routes/deactivate  {"tenant","service","env","version"} -> 200
//   DELETE /api/v1/routes?tenant=&service=&env=&version= -> 204
//   GET    /api/v1/routes?tenant=&service=&env=&version=&active=   (the list format, by key)
//   GET    /api/v1/routes/events?tenant=&service=&env=&version=&action=&start_time=&end_time=
//          (the list format, newest first)
// Every call asks PostgreSQL; the actor of a change is the caller's token name when
// authentication is on, else the client's address.
// GET /api/v1/routes/resolve is the resolver's (it answers from the cache).
void add_route_routes(http::router& routes, route_api api);

}  // namespace sluice::api
