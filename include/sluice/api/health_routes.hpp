#pragma once

#include "sluice/api/readiness.hpp"
#include "sluice/http/router.hpp"
#include "sluice/metrics/registry.hpp"

namespace sluice::api {

// GET /health, /health/live and its alias /healthz (process answers), /health/ready[?strict=true]
// and its alias /ready (whether pushes can be acknowledged, and each check; see
// readiness_verdict.hpp): open to anyone. /metrics: `metrics_access` (METRICS_AUTH = read).
void add_health_routes(http::router& routes, const readiness& ready,
                       const metrics::registry& metrics,
                       http::access metrics_access = http::access::open);

}  // namespace sluice::api
