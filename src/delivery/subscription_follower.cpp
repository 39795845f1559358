#include "sluice/delivery/subscription_follower.hpp"

#include "sluice/delivery/subscription_store.hpp"

#include <spdlog/spdlog.h>

namespace sluice::delivery {
namespace asio = boost::asio;

subscription_follower::subscription_follower(asio::any_io_executor executor,
                                             subscription_registry& registry,
                                             store::listen_options options,
                                             metrics::registry& metrics)
    : registry_(registry), follower_(executor, target(), std::move(options), metrics) {}

store::listen_target subscription_follower::target() {
  store::listen_target t;
  t.channel = "sluice_subscriptions";
  t.log_name = "delivery";
  t.metric_prefix = "sluice_subscriptions_follower";
  t.what = "sluice_subscriptions";
  t.full_reload = [this](store::pg_connection& conn, store::clock::time_point deadline,
                         bool after_connect) { return full_reload(conn, deadline, after_connect); };
  t.reload_one = [this](store::pg_connection& conn, const std::string& payload,
                        store::clock::time_point deadline) {
    return reload_one(conn, payload, deadline);
  };
  return t;
}

asio::awaitable<bool> subscription_follower::full_reload(store::pg_connection& conn,
                                                         store::clock::time_point deadline,
                                                         bool after_connect) {
  auto all = co_await subscription_store::load_all(conn, deadline);
  if (all.status) {
    // 42P01 undefined_table: the schema is not migrated yet (start-up).
    if (all.status.sqlstate == "42P01") {
      spdlog::info("delivery: sluice_subscriptions does not exist yet, waiting for the migrations");
    } else if (!follower_.stopping()) {
      spdlog::warn("delivery: cannot read sluice_subscriptions error=\"{}\"", all.status.message);
    }
    co_return false;
  }
  const std::size_t count = all.items.size();
  const auto before = registry_.version();
  registry_.replace_all(std::move(all.items));
  spdlog::log(after_connect ? spdlog::level::info : spdlog::level::debug,
              "delivery: {} subscriptions loaded ({} changed), following changes", count,
              registry_.version() - before);
  co_return true;
}

asio::awaitable<bool> subscription_follower::reload_one(store::pg_connection& conn,
                                                        const std::string& payload,
                                                        store::clock::time_point deadline) {
  // Neither queue names nor subscription names contain '/'.
  const auto slash = payload.find('/');
  if (slash == std::string::npos) {
    spdlog::warn("delivery: ignoring notification \"{}\" (not <queue>/<name>)", payload);
    co_return true;
  }
  const std::string queue = payload.substr(0, slash);
  const std::string name = payload.substr(slash + 1);
  auto [status, found] = co_await subscription_store::load(conn, queue, name, deadline);
  if (status) {
    if (!follower_.stopping())
      spdlog::warn("delivery: cannot read subscription {} error=\"{}\"", payload, status.message);
    co_return false;
  }
  const bool exists = found.has_value();
  // Also the echo of this instance's own write, already applied: the registry ignores it.
  if (exists) {
    registry_.put(std::move(*found));
  } else {
    registry_.remove(queue, name);
  }
  spdlog::debug("delivery: subscription {} {} by notification", payload,
                exists ? "reloaded" : "removed");
  co_return true;
}

}  // namespace sluice::delivery
