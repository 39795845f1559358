#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sluice/metrics/registry.hpp"
#include "sluice/services/service.hpp"
#include "sluice/services/service_follower.hpp"
#include "sluice/services/service_registry.hpp"
#include "sluice/services/service_store.hpp"
#include "sluice/services/services_file.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/signal_set.hpp>

namespace sluice::services {

struct catalog_options {
  service_defaults defaults;
  // The environment's services (services_from_settings): the lowest layer.
  std::vector<service> env_services;
  std::string services_file;  // SERVICES_FILE; empty = none
  // The catalog's own pool (two connections: API writes are rare) and the follower's
  // connection are opened with these.
  store::pool_options pool;
  follower_options follower;
  std::chrono::milliseconds statement_timeout{5000};
};

// Everything about services one instance has: the layered registry (file > api > env), the
// store behind the API, the follower that keeps the api layer equal to PostgreSQL, the
// SERVICES_FILE watcher, SIGHUP, and the sluice_schedule_valid_seconds gauge. The proxy and
// the workers read registry(); only the API routes write (through store(), then registry()).
// Loop thread only.
class service_catalog {
 public:
  service_catalog(boost::asio::any_io_executor executor, metrics::registry& metrics,
                  catalog_options options);
  ~service_catalog();
  service_catalog(const service_catalog&) = delete;
  service_catalog& operator=(const service_catalog&) = delete;

  // Fills the env layer and loads SERVICES_FILE. Throws std::runtime_error naming the file and
  // the field when the file is invalid: the daemon exits 2. Needs no PostgreSQL.
  void load();
  // Starts the follower (which connects in the background: PostgreSQL being down delays
  // nothing), the file watcher and the SIGHUP handler.
  void start();
  boost::asio::awaitable<void> stop();
  // The schema was just migrated: the follower retries at once instead of after its pause.
  void schema_ready();

  service_registry& registry() { return registry_; }
  const service_registry& registry() const { return registry_; }
  service_store& store() { return store_; }
  const service_defaults& defaults() const { return options_.defaults; }
  std::chrono::milliseconds statement_timeout() const { return options_.statement_timeout; }
  // Null without SERVICES_FILE.
  services_file* file() { return file_.get(); }
  service_follower& follower() { return follower_; }

 private:
  void arm_sighup();
  void refresh_schedule_gauges();

  boost::asio::any_io_executor executor_;
  catalog_options options_;
  service_registry registry_;
  store::pg_pool pool_;
  service_store store_;
  service_follower follower_;
  std::unique_ptr<services_file> file_;
  boost::asio::signal_set sighup_;
  metrics::family<metrics::gauge>& schedule_valid_;
  std::vector<std::string> gauged_;  // services with a schedule_valid_ series
  bool file_watching_ = false;
  bool stopped_ = false;
};

}  // namespace sluice::services
