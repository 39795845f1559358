#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sluice/core/async_event.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/store/follower_mode.hpp"
#include "sluice/store/pg_connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::store {

struct listen_options {
  connection_options connection;  // DATABASE_URL, DB_CONNECT_TIMEOUT_MS, ...
  std::chrono::milliseconds statement_timeout{5000};
  // The safety net: a full reload this often even when no notification came (one may be lost
  // while the connection was being replaced).
  std::chrono::milliseconds full_reload_interval{30'000};
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{5000};
};

// What a listen_follower follows: the NOTIFY channel, names for logs and metrics, and the two
// reads. Each read gets the follower's connection and a deadline, applies what it read, and
// answers false when the read failed (the follower then reconnects; the callback logs why).
struct listen_target {
  std::string channel;        // e.g. "sluice_services"
  std::string log_name;       // log prefix, e.g. "services"
  std::string metric_prefix;  // e.g. "sluice_services_follower"
  std::string what;           // for metric help texts, e.g. "sluice_services"
  // The whole table; `after_connect` is true for the first one on a new connection.
  std::function<boost::asio::awaitable<bool>(pg_connection& conn, clock::time_point deadline,
                                             bool after_connect)>
      full_reload;
  // The one row a notification named (its payload).
  std::function<boost::asio::awaitable<bool>(pg_connection& conn, const std::string& payload,
                                             clock::time_point deadline)>
      reload_one;
};

// Keeps something in memory equal to a table on every instance. It holds a PostgreSQL
// connection of its own (not from a pool: LISTEN belongs to a session) that runs LISTEN
// <channel>; the table's trigger NOTIFYs the changed row in the writing transaction, so the
// notification arrives right after the commit and only that row is re-read. After every
// (re)connect and every full_reload_interval the whole table is read (a notification sent while
// the connection was down is lost). PostgreSQL going away sends it to backing_off and
// reconnecting, never blocking anything else. The modes are follower_modes'. Loop thread only.
//
// Metrics: <prefix>_connected, <prefix>_reloads_total{kind=full|one}, <prefix>_failures_total.
class listen_follower {
 public:
  listen_follower(boost::asio::any_io_executor executor, listen_target target,
                  listen_options options, metrics::registry& metrics);
  ~listen_follower();
  listen_follower(const listen_follower&) = delete;
  listen_follower& operator=(const listen_follower&) = delete;

  // Runs until stop(); co_spawn it.
  boost::asio::awaitable<void> run();
  // Ends run() soon (closes the connection, cuts a pause short); wait_stopped() waits for it.
  void stop();
  boost::asio::awaitable<void> wait_stopped();

  // A reconnect now instead of after the pause (the schema was just migrated).
  void poke();

  follower_mode mode() const { return modes_.mode(); }
  bool stopping() const { return stopping_; }
  // Full reloads applied since start (tests and logs).
  std::uint64_t full_reloads() const { return full_reloads_; }

 private:
  void change(follower_event e);
  clock::time_point statement_deadline() const;
  boost::asio::awaitable<void> connect();
  boost::asio::awaitable<void> full_reload();
  boost::asio::awaitable<void> follow();

  boost::asio::any_io_executor executor_;
  listen_target target_;
  listen_options options_;
  follower_modes modes_;
  std::unique_ptr<pg_connection> conn_;
  clock::time_point next_full_reload_{};
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

}  // namespace sluice::store
