#pragma once

#include "sluice/api/readiness.hpp"
#include "sluice/http/router.hpp"
#include "sluice/metrics/registry.hpp"

namespace sluice::api {

// GET /health, /health/live (process answers), /health/ready[?strict=true] (whether pushes can
// be acknowledged, and each check; see readiness_verdict.hpp), /metrics.
void add_health_routes(http::router& routes, const readiness& ready,
                       const metrics::registry& metrics);

}  // namespace sluice::api
