#pragma once

#include <cstdint>

#include "sluice/metrics/registry.hpp"
#include "sluice/services/service.hpp"
#include "sluice/services/service_registry.hpp"
#include "sluice/store/listen_follower.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::services {

using follower_options = store::listen_options;
using store::follower_mode;

// Keeps the registry's api layer equal to sluice_services on every instance: a
// store::listen_follower on channel sluice_services (the trigger's payload is the service name)
// whose full reload syncs the api layer and whose one-row reload puts or removes one service.
// Loop thread only.
class service_follower {
 public:
  service_follower(boost::asio::any_io_executor executor, service_registry& registry,
                   service_defaults defaults, follower_options options, metrics::registry& metrics);

  // Runs until stop(); co_spawn it.
  boost::asio::awaitable<void> run() { return follower_.run(); }
  // Ends run() soon (closes the connection, cuts a pause short); wait_stopped() waits for it.
  void stop() { follower_.stop(); }
  boost::asio::awaitable<void> wait_stopped() { return follower_.wait_stopped(); }

  // A reconnect now instead of after the pause (the schema was just migrated).
  void poke() { follower_.poke(); }

  follower_mode mode() const { return follower_.mode(); }
  // Full reloads applied since start (tests and logs).
  std::uint64_t full_reloads() const { return follower_.full_reloads(); }

 private:
  store::listen_target target();
  boost::asio::awaitable<bool> full_reload(store::pg_connection& conn,
                                           store::clock::time_point deadline, bool after_connect);
  boost::asio::awaitable<bool> reload_one(store::pg_connection& conn, const std::string& name,
                                          store::clock::time_point deadline);

  service_registry& registry_;
  service_defaults defaults_;
  store::listen_follower follower_;
};

}  // namespace sluice::services
