#include "sluice/services/service_follower.hpp"

#include <string>

#include "sluice/services/layer_sync.hpp"
#include "sluice/services/service_store.hpp"

#include <spdlog/spdlog.h>

namespace sluice::services {
namespace asio = boost::asio;

service_follower::service_follower(asio::any_io_executor executor, service_registry& registry,
                                   service_defaults defaults, follower_options options,
                                   metrics::registry& metrics)
    : registry_(registry),
      defaults_(std::move(defaults)),
      follower_(executor, target(), std::move(options), metrics) {}

store::listen_target service_follower::target() {
  store::listen_target t;
  t.channel = "sluice_services";
  t.log_name = "services";
  t.metric_prefix = "sluice_services_follower";
  t.what = "sluice_services";
  t.full_reload = [this](store::pg_connection& conn, store::clock::time_point deadline,
                         bool after_connect) { return full_reload(conn, deadline, after_connect); };
  t.reload_one = [this](store::pg_connection& conn, const std::string& name,
                        store::clock::time_point deadline) {
    return reload_one(conn, name, deadline);
  };
  return t;
}

asio::awaitable<bool> service_follower::full_reload(store::pg_connection& conn,
                                                    store::clock::time_point deadline,
                                                    bool after_connect) {
  auto all = co_await service_store::load_all(conn, defaults_, deadline);
  if (all.status) {
    // 42P01 undefined_table: the push service has not migrated the schema yet (start-up).
    if (all.status.sqlstate == "42P01") {
      spdlog::info("services: sluice_services does not exist yet, waiting for the migrations");
    } else if (!follower_.stopping()) {
      spdlog::warn("services: cannot read sluice_services error=\"{}\"", all.status.message);
    }
    co_return false;
  }
  const std::size_t count = all.services.size();
  const std::size_t changed = sync_layer(registry_, service_source::api, std::move(all.services));
  spdlog::log(after_connect ? spdlog::level::info : spdlog::level::debug,
              "services: {} stored services loaded ({} changed), following changes", count,
              changed);
  co_return true;
}

asio::awaitable<bool> service_follower::reload_one(store::pg_connection& conn,
                                                   const std::string& name,
                                                   store::clock::time_point deadline) {
  auto one = co_await service_store::load(conn, name, defaults_, deadline);
  if (one.status) {
    if (!follower_.stopping())
      spdlog::warn("services: cannot read service {} error=\"{}\"", name, one.status.message);
    co_return false;
  }
  const bool found = one.found.has_value();
  if (found) {
    // Also the echo of this instance's own write, already applied: nothing to tell anyone.
    put_if_changed(registry_, std::move(*one.found));
  } else {
    registry_.remove(service_source::api, name);
  }
  spdlog::debug("services: {} {} by notification", name, found ? "reloaded" : "removed");
  co_return true;
}

}  // namespace sluice::services
