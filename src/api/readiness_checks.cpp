#include "sluice/api/readiness_checks.hpp"

#include <algorithm>
#include <string>

#include "sluice/core/rfc3339.hpp"

namespace sluice::api {

check_result postgres_check(const postgres_watch::state& probe, bool schema_ready) {
  if (!probe.probed)
    return {false, "not probed yet", false};
  if (probe.error)
    return {false, "unreachable: " + probe.error.message(), false};
  if (!schema_ready)
    return {false, "reachable; schema not migrated yet", false};
  return {true, "reachable", true};
}

namespace {

std::string usage(const char* name, const buffer::buffer_stats& s, std::uint64_t max_bytes) {
  return std::string(name) + ": " + std::to_string(s.pending_records) + " records pending, " +
         std::to_string(s.disk_bytes) + " of " + std::to_string(max_bytes) + " bytes used";
}

}  // namespace

check_result buffer_check(const directory_watch::state& dirs, const push::buffers_status& status,
                          const buffer_limits& limits, directory_watch::clock::time_point now) {
  const auto& failover = status.failover.stats;
  const std::string detail = usage("failover", failover, limits.max_bytes) + "; " +
                             usage("qos0", status.qos0.stats, limits.max_bytes);
  const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - dirs.at);
  if (dirs.dirs.empty() || age > limits.max_answer_age) {
    return {false,
            "the file system has not answered a writability check for " +
                std::to_string(age.count()) + " ms",
            false};
  }
  const auto& failover_dir = dirs.dirs.front();
  if (!failover_dir.writable)
    return {false, failover_dir.dir.string() + " is not writable: " + failover_dir.error, false};
  const std::uint64_t free_bytes =
      limits.max_bytes - std::min<std::uint64_t>(failover.disk_bytes, limits.max_bytes);
  if (free_bytes == 0 || free_bytes < limits.headroom_bytes) {
    return {false,
            "failover buffer full: " + std::to_string(free_bytes) +
                " bytes left of FILE_BUFFER_MAX_BYTES, less than a large push needs (" +
                std::to_string(limits.headroom_bytes) + "), so pushes are refused; " + detail,
            false};
  }
  for (std::size_t i = 1; i < dirs.dirs.size(); ++i) {
    if (!dirs.dirs[i].writable) {
      return {false,
              dirs.dirs[i].dir.string() + " is not writable: " + dirs.dirs[i].error +
                  " (durable pushes still go to the failover buffer)",
              true};
    }
  }
  if (failover.disk_bytes >= limits.max_bytes / 10 * 9) {
    return {false,
            "failover buffer nearly full (at least 90% of FILE_BUFFER_MAX_BYTES): pushes still "
            "fit, but are refused once it is full; " +
                detail,
            true};
  }
  return {true, detail, true};
}

check_result workers_check(const std::vector<worker::consumer_status>& consumers) {
  check_result out;
  out.ok = true;
  if (consumers.empty()) {
    out.detail = "no service to consume";
    return out;
  }
  for (const auto& c : consumers) {
    if (!out.detail.empty())
      out.detail += ", ";
    out.detail += c.service + "/" + c.flavour + ": ";
    if (c.consuming) {
      out.detail += "consuming";
    } else {
      out.ok = false;
      out.detail += c.last_error.empty() ? "not consuming" : "not consuming (" + c.last_error + ")";
    }
  }
  return out;
}

check_result deliveries_check(const std::vector<delivery::consumer_status>& consumers) {
  check_result out;
  out.ok = true;
  if (consumers.empty()) {
    out.detail = "no subscription to deliver";
    return out;
  }
  for (const auto& c : consumers) {
    if (!out.detail.empty())
      out.detail += ", ";
    out.detail += c.queue + "/" + c.name + ": ";
    if (c.consuming) {
      out.detail += "consuming";
    } else {
      out.ok = false;
      out.detail += c.last_error.empty() ? "not consuming" : "not consuming (" + c.last_error + ")";
    }
    if (c.circuit != "closed")
      out.detail += " (circuit " + c.circuit + ")";
  }
  return out;
}

namespace {

nlohmann::json time_or_null(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? nlohmann::json(format_rfc3339(*t)) : nlohmann::json(nullptr);
}

}  // namespace

check_with_fields registry_check(const routing::route_follower_status& follower,
                                 std::size_t cache_entries,
                                 std::chrono::system_clock::time_point now,
                                 std::chrono::seconds max_sync_age) {
  const bool arriving =
      follower.connected && follower.last_sync_at && now - *follower.last_sync_at <= max_sync_age;
  check_with_fields with;
  auto& out = with.result;
  out.ok = follower.connected && follower.applied.has_value();
  with.fields = {
      {"cache_entries", cache_entries},
      {"applied_version",
       follower.applied ? nlohmann::json(*follower.applied) : nlohmann::json(nullptr)},
      {"connected", follower.connected},
      {"events_arriving", arriving},
      {"events_applied", follower.events_applied},
      {"last_event_at", time_or_null(follower.last_event_at)},
      {"last_sync_at", time_or_null(follower.last_sync_at)},
  };
  const std::string cached = std::to_string(cache_entries) + " routes cached";
  if (!follower.applied) {
    out.detail = cached +
                 "; not following changes yet (PostgreSQL not reached, or the schema "
                 "not migrated)";
  } else if (!follower.connected) {
    out.detail = cached + "; applied registry version " + std::to_string(*follower.applied) +
                 "; change events not arriving (reconnecting to PostgreSQL; catches up by version "
                 "on reconnect)";
  } else {
    out.detail = cached + "; applied registry version " + std::to_string(*follower.applied) +
                 "; following changes";
  }
  return with;
}

check_with_fields database_check(const store::pg_pool::counts& counts, std::size_t max_connections,
                                 bool initialized, const postgres_watch::state& probe) {
  check_with_fields with;
  auto& out = with.result;
  out.ok = probe.probed && !probe.error;
  with.fields = {
      {"initialized", initialized},           {"min_connections", 0},
      {"max_connections", max_connections},   {"current_connections", counts.open},
      {"available_connections", counts.idle},
  };
  out.detail = std::to_string(counts.open) + " of " + std::to_string(max_connections) +
               " connections open, " + std::to_string(counts.idle) + " idle, " +
               std::to_string(counts.waiting) + " callers waiting";
  if (!out.ok)
    out.detail += probe.probed ? "; PostgreSQL unreachable: " + probe.error.message()
                               : "; PostgreSQL not probed yet";
  return with;
}

}  // namespace sluice::api
