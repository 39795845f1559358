#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "sluice/core/async_event.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/services/follower_mode.hpp"
#include "sluice/services/service.hpp"
#include "sluice/services/service_registry.hpp"
#include "sluice/store/pg_connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::services {

struct follower_options {
  store::connection_options connection;  // DATABASE_URL, DB_CONNECT_TIMEOUT_MS, ...
  std::chrono::milliseconds statement_timeout{5000};
  // The safety net: a full reload this often even when no notification came (one may be lost
  // while the connection was being replaced).
  std::chrono::milliseconds full_reload_interval{30'000};
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{5000};
};

// Keeps the registry's api layer equal to sluice_services on every instance. It holds a
// PostgreSQL connection of its own (not from a pool: LISTEN belongs to a session) that runs
// LISTEN sluice_services; the table's trigger NOTIFYs the changed name in the writing
// transaction, so the notification arrives right after the commit and only that service is
// re-read. After every (re)connect and every full_reload_interval the whole table is read
// (a notification sent while the connection was down is lost). PostgreSQL going away sends it
// to backing_off and reconnecting, never blocking anything else. Loop thread only.
class service_follower {
 public:
  service_follower(boost::asio::any_io_executor executor, service_registry& registry,
                   service_defaults defaults, follower_options options, metrics::registry& metrics);
  ~service_follower();
  service_follower(const service_follower&) = delete;
  service_follower& operator=(const service_follower&) = delete;

  // Runs until stop(); co_spawn it.
  boost::asio::awaitable<void> run();
  // Ends run() soon (closes the connection, cuts a pause short); wait_stopped() waits for it.
  void stop();
  boost::asio::awaitable<void> wait_stopped();

  // A reconnect now instead of after the pause (the schema was just migrated).
  void poke();

  follower_mode mode() const { return modes_.mode(); }
  // Full reloads applied since start (tests and logs).
  std::uint64_t full_reloads() const { return full_reloads_; }

 private:
  void change(follower_event e);
  boost::asio::awaitable<void> connect();
  boost::asio::awaitable<void> full_reload();
  boost::asio::awaitable<void> follow();

  boost::asio::any_io_executor executor_;
  service_registry& registry_;
  service_defaults defaults_;
  follower_options options_;
  follower_modes modes_;
  std::unique_ptr<store::pg_connection> conn_;
  store::clock::time_point next_full_reload_{};
  bool stopping_ = false;
  bool running_ = false;
  bool fresh_connection_ = false;  // no full reload since the last connect
  async_event wake_;               // stop, poke, or run() ended
  std::uint64_t full_reloads_ = 0;
  metrics::gauge& connected_;
  metrics::counter& reloads_full_;
  metrics::counter& reloads_one_;
  metrics::counter& failures_;
};

}  // namespace sluice::services
