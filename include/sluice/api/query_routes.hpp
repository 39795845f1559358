#pragma once

#include <chrono>

#include "sluice/http/router.hpp"
#include "sluice/query/query_params.hpp"
#include "sluice/store/pg_pool.hpp"

namespace sluice::api {

// The query API (README, Query API): GET /api/v1/queues, /api/v1/queues/{queue}/partitions,
// /api/v1/queues/{queue}/messages and /api/v1/messages/{id}, reading PostgreSQL through
// `pool` (the routes keep their readers; the pool must outlive the router).
void add_query_routes(http::router& routes, store::pg_pool& pool, query::page_limits limits,
                      std::chrono::milliseconds statement_timeout);

}  // namespace sluice::api
