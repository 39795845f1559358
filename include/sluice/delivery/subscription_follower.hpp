#pragma once

#include <cstdint>
#include <string>

#include "sluice/delivery/subscription_registry.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/store/listen_follower.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

// Keeps a subscription_registry equal to sluice_subscriptions on every instance: a
// store::listen_follower on channel sluice_subscriptions (payload "<queue>/<name>"), a full
// reload after every (re)connect and every 30 s, one row re-read per notification. Changes
// reach every instance within a second of the commit. Metrics
// sluice_subscriptions_follower_{connected,reloads_total,failures_total}. Loop thread only.
class subscription_follower {
 public:
  subscription_follower(boost::asio::any_io_executor executor, subscription_registry& registry,
                        store::listen_options options, metrics::registry& metrics);

  boost::asio::awaitable<void> run() { return follower_.run(); }
  void stop() { follower_.stop(); }
  boost::asio::awaitable<void> wait_stopped() { return follower_.wait_stopped(); }
  void poke() { follower_.poke(); }

  store::follower_mode mode() const { return follower_.mode(); }
  std::uint64_t full_reloads() const { return follower_.full_reloads(); }

 private:
  store::listen_target target();
  boost::asio::awaitable<bool> full_reload(store::pg_connection& conn,
                                           store::clock::time_point deadline, bool after_connect);
  boost::asio::awaitable<bool> reload_one(store::pg_connection& conn, const std::string& payload,
                                          store::clock::time_point deadline);

  subscription_registry& registry_;
  store::listen_follower follower_;
};

}  // namespace sluice::delivery
