#include "sluice/routing/route_follower.hpp"

#include <charconv>
#include <string>

#include <spdlog/spdlog.h>

namespace sluice::routing {
namespace asio = boost::asio;

route_follower::route_follower(asio::any_io_executor executor, route_resolver& resolver,
                               route_follower_options options, metrics::registry& metrics,
                               route_follower_reads reads)
    : resolver_(resolver),
      options_(std::move(options)),
      reads_(std::move(reads)),
      version_gauge_(metrics
                         .add_gauge("sluice_route_registry_version",
                                    "The route registry version this instance has applied to "
                                    "its cache (every change up to it).")
                         .get()),
      follower_(executor, target(), options_.listen, metrics) {}

store::listen_target route_follower::target() {
  store::listen_target t;
  t.channel = "sluice_routes";
  t.log_name = "routes";
  t.metric_prefix = "sluice_routes_follower";
  t.what = "sluice_route_events";
  t.full_reload = [this](store::pg_connection& conn, store::clock::time_point deadline, bool) {
    return catch_up(conn, deadline);
  };
  t.reload_one = [this](store::pg_connection& conn, const std::string& payload,
                        store::clock::time_point deadline) {
    std::int64_t version = 0;
    const auto [ptr, ec] =
        std::from_chars(payload.data(), payload.data() + payload.size(), version);
    // A payload that is not a version still means "something changed".
    std::optional<std::int64_t> notified;
    if (ec == std::errc{} && ptr == payload.data() + payload.size())
      notified = version;
    return catch_up(conn, deadline, notified);
  };
  return t;
}

void route_follower::set_applied(std::int64_t version) {
  applied_ = version;
  version_gauge_.set(static_cast<double>(version));
}

route_follower_status route_follower::status() const {
  route_follower_status s;
  s.connected = follower_.mode() == store::follower_mode::following;
  s.applied = applied_;
  s.events_applied = events_applied_;
  s.last_event_at = last_event_at_;
  s.last_sync_at = last_sync_at_;
  return s;
}

asio::awaitable<bool> route_follower::catch_up(store::pg_connection& conn,
                                               store::clock::time_point deadline,
                                               std::optional<std::int64_t> notified_version) {
  if (applied_ && notified_version && *notified_version <= *applied_)
    co_return true;
  const auto read = co_await reads_.current_version(conn, deadline);
  const auto& [status, current] = read;
  if (status) {
    // 42P01 undefined_table: the push path has not migrated the schema yet (start-up).
    if (status.sqlstate == "42P01") {
      spdlog::info("routes: sluice_route_registry does not exist yet, waiting for the migrations");
    } else if (!follower_.stopping()) {
      spdlog::warn("routes: cannot read the registry version error=\"{}\"", status.message);
    }
    co_return false;
  }
  if (!applied_) {
    // What lookups cached before now was never fenced against the changes in between.
    resolver_.clear(current);
    set_applied(current);
    last_sync_at_ = std::chrono::system_clock::now();
    spdlog::info("routes: following changes from registry version {}", current);
    co_return true;
  }
  // Versions are gap-free (the registry row's lock orders the commits), so this is the number
  // of events to replay; a registry behind us was recreated.
  const std::int64_t behind = current - *applied_;
  if (behind < 0 || behind > options_.max_catch_up) {
    spdlog::warn(
        "routes: registry at version {}, applied {}: cache emptied instead of replaying the "
        "changes (more than {} to replay, or the registry was recreated)",
        current, *applied_, options_.max_catch_up);
    resolver_.clear(current);
    set_applied(current);
    last_sync_at_ = std::chrono::system_clock::now();
    co_return true;
  }
  std::size_t applied_now = 0;
  while (true) {
    auto page = co_await reads_.events_since(conn, *applied_, options_.page, deadline);
    if (page.status) {
      if (!follower_.stopping())
        spdlog::warn("routes: cannot read route events after version {} error=\"{}\"", *applied_,
                     page.status.message);
      co_return false;
    }
    for (const auto& e : page.events) {
      if (e.registry_version <= *applied_)
        continue;
      resolver_.apply(e);
      set_applied(e.registry_version);
      ++events_applied_;
      ++applied_now;
      last_event_at_ = std::chrono::system_clock::now();
    }
    if (page.events.size() < options_.page)
      break;
  }
  last_sync_at_ = std::chrono::system_clock::now();
  if (applied_now > 0)
    spdlog::debug("routes: {} change events applied, registry version {}", applied_now, *applied_);
  co_return true;
}

}  // namespace sluice::routing
