#pragma once

#include <functional>

#include "sluice/metrics/registry.hpp"

namespace sluice::push {

struct buffers_status;

// The gauges that mirror the push path's state and its two buffer logs (mode, PostgreSQL
// health, pending, failed/, what recovery and replay set aside), refreshed at every /metrics
// collect from one call of `status` (push_service::status()): the state has one owner, and
// nothing else updates these gauges.
void expose_push_state(metrics::registry& metrics, std::function<buffers_status()> status);

}  // namespace sluice::push
