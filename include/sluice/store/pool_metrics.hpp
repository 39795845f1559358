#pragma once

#include "sluice/metrics/registry.hpp"
#include "sluice/store/pg_pool.hpp"

namespace sluice::store {

// sluice_db_pool_connections{state="idle"|"in_use"|"max"} of `pool`, read at every collect.
// `pool` must outlive the collects (the daemon's main pool does: collects end with the loop).
void export_pool_metrics(metrics::registry& metrics, const pg_pool& pool);

}  // namespace sluice::store
