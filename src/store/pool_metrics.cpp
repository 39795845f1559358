#include "sluice/store/pool_metrics.hpp"

namespace sluice::store {

void export_pool_metrics(metrics::registry& metrics, const pg_pool& pool) {
  auto& family = metrics.add_gauge(
      "sluice_db_pool_connections",
      "Connections of the PostgreSQL pool the pushes use: idle (open, not lent), in_use (lent "
      "or being opened) and max (DB_POOL_MAX).",
      {"state"});
  auto& idle = family.with({"idle"});
  auto& in_use = family.with({"in_use"});
  auto& max = family.with({"max"});
  metrics.on_collect([&pool, &idle, &in_use, &max] {
    const auto c = pool.stats();
    idle.set(static_cast<double>(c.idle));
    in_use.set(static_cast<double>(c.open - c.idle));
    max.set(static_cast<double>(pool.options().max_connections));
  });
}

}  // namespace sluice::store
