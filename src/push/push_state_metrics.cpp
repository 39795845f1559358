#include "sluice/push/push_state_metrics.hpp"

#include <chrono>
#include <string>
#include <utility>

#include "sluice/push/push_service.hpp"

namespace sluice::push {

void expose_push_state(metrics::registry& metrics, std::function<buffers_status()> status) {
  auto& mode_gauge =
      metrics.add_gauge("sluice_push_mode",
                        "1 for the durable push path's current mode, 0 for the others.", {"mode"});
  auto& db_healthy =
      metrics.add_gauge("sluice_db_healthy", "1 when the last PostgreSQL round trip worked.").get();
  auto& failover_active =
      metrics
          .add_gauge("sluice_push_failover_active", "1 while durable pushes go to the file buffer.")
          .get();
  auto& pending = metrics.add_gauge("sluice_buffer_pending_records",
                                    "Records in the buffer not yet in PostgreSQL.", {"log"});
  auto& pending_bytes = metrics.add_gauge("sluice_buffer_pending_bytes",
                                          "Bytes of records not yet in PostgreSQL.", {"log"});
  auto& disk_bytes =
      metrics.add_gauge("sluice_buffer_disk_bytes", "Bytes of segment files on disk.", {"log"});
  auto& oldest = metrics.add_gauge("sluice_buffer_oldest_pending_age_seconds",
                                   "Age of the oldest record not yet in PostgreSQL.", {"log"});
  auto& failed = metrics.add_gauge("sluice_buffer_failed_records",
                                   "Records in failed/ (rejected by PostgreSQL).", {"log"});
  auto& truncated = metrics.add_gauge(
      "sluice_buffer_truncated_tails",
      "Torn or corrupt segment tails truncated by recovery since start.", {"log"});
  auto& quarantined =
      metrics.add_gauge("sluice_buffer_quarantined_segments",
                        "Unreadable segments moved to quarantine/ since start.", {"log"});
  auto& unreadable = metrics.add_gauge(
      "sluice_buffer_unreadable_ranges",
      "Ranges of records found corrupt and set aside to quarantine/ since start.", {"log"});
  auto& unreadable_records =
      metrics.add_gauge("sluice_buffer_unreadable_records",
                        "Records inside the ranges set aside as corrupt since start.", {"log"});
  auto& quarantined_bytes =
      metrics.add_gauge("sluice_buffer_quarantined_bytes",
                        "Bytes moved or copied to quarantine/ since start.", {"log"});
  auto& read_errors = metrics.add_gauge(
      "sluice_buffer_read_errors",
      "Replay reads that failed with an I/O error since start (retried, nothing skipped).",
      {"log"});
  auto& failed_bytes =
      metrics.add_gauge("sluice_buffer_failed_bytes", "Bytes of failed/ on disk.", {"log"});
  auto& failed_full = metrics.add_gauge(
      "sluice_buffer_failed_full_refusals",
      "Records not moved to failed/ because it was at FILE_BUFFER_FAILED_MAX_BYTES (they stay "
      "pending) since start.",
      {"log"});
  metrics.on_collect([status = std::move(status), &db_healthy, &failover_active, &pending,
                      &pending_bytes, &disk_bytes, &oldest, &failed, &truncated, &quarantined,
                      &unreadable, &unreadable_records, &quarantined_bytes, &read_errors,
                      &failed_bytes, &failed_full, &mode_gauge] {
    const buffers_status st = status();
    db_healthy.set(st.db_healthy ? 1 : 0);
    failover_active.set(st.mode == push_mode::direct ? 0 : 1);
    for (auto m :
         {push_mode::failing_over, push_mode::draining, push_mode::handing_back, push_mode::direct})
      mode_gauge.with({to_string(m)}).set(st.mode == m ? 1 : 0);
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    for (const auto& [name, log] :
         {std::pair<const char*, const log_status*>{"failover", &st.failover},
          std::pair<const char*, const log_status*>{"qos0", &st.qos0}}) {
      const auto& s = log->stats;
      unreadable.with({name}).set(static_cast<double>(s.unreadable_ranges_total));
      unreadable_records.with({name}).set(static_cast<double>(s.unreadable_records_total));
      quarantined_bytes.with({name}).set(static_cast<double>(s.quarantined_bytes_total));
      read_errors.with({name}).set(static_cast<double>(s.read_errors_total));
      failed_bytes.with({name}).set(static_cast<double>(s.failed_bytes));
      failed_full.with({name}).set(static_cast<double>(s.failed_full_total));
      pending.with({name}).set(static_cast<double>(s.pending_records));
      pending_bytes.with({name}).set(static_cast<double>(s.pending_bytes));
      disk_bytes.with({name}).set(static_cast<double>(s.disk_bytes));
      oldest.with({name}).set(s.oldest_pending_created_ms
                                  ? static_cast<double>(now_ms - *s.oldest_pending_created_ms) /
                                        1000.0
                                  : 0.0);
      failed.with({name}).set(static_cast<double>(s.failed_records));
      truncated.with({name}).set(static_cast<double>(s.truncated_tails_total));
      quarantined.with({name}).set(static_cast<double>(s.quarantined_segments_total));
    }
  });
}

}  // namespace sluice::push
