#pragma once

#include <chrono>
#include <cstdint>

#include "sluice/delivery/subscription_follower.hpp"
#include "sluice/delivery/subscription_registry.hpp"
#include "sluice/delivery/subscription_store.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/store/listen_follower.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

struct subscription_catalog_options {
  // The catalog's own pool (two connections: API writes and pauses are rare) and the
  // follower's connection are opened with these.
  store::pool_options pool;
  store::listen_options follower;
  std::chrono::milliseconds statement_timeout{5000};
  std::uint32_t default_concurrency = 32;  // CONCURRENCY_PER_QUEUE
};

// Everything about subscriptions one instance has: the registry (kept equal to
// sluice_subscriptions by the follower), the store behind the API and the delivery engine's
// pauses. The daemon holds one; the delivery engine takes registry() and store(), the API routes
// write through store() and apply the result to registry() at once. Loop thread only.
class subscription_catalog {
 public:
  subscription_catalog(boost::asio::any_io_executor executor, metrics::registry& metrics,
                       subscription_catalog_options options);
  ~subscription_catalog();
  subscription_catalog(const subscription_catalog&) = delete;
  subscription_catalog& operator=(const subscription_catalog&) = delete;

  // Starts the follower (which connects in the background: PostgreSQL being down delays
  // nothing).
  void start();
  boost::asio::awaitable<void> stop();
  // The schema was just migrated: the follower retries at once instead of after its pause.
  void schema_ready();

  subscription_registry& registry() { return registry_; }
  const subscription_registry& registry() const { return registry_; }
  subscription_store& store() { return store_; }
  subscription_follower& follower() { return follower_; }
  std::chrono::milliseconds statement_timeout() const { return options_.statement_timeout; }
  std::uint32_t default_concurrency() const { return options_.default_concurrency; }

 private:
  boost::asio::any_io_executor executor_;
  subscription_catalog_options options_;
  subscription_registry registry_;
  sluice::store::pg_pool pool_;
  subscription_store store_;
  subscription_follower follower_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace sluice::delivery
