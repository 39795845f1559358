#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>

#include "sluice/relay/queue_mode.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

struct queue_setting {
  queue_mode mode = queue_mode::queue;
  bool configured = false;  // false: no row, the default (DELIVERY_MODE) applies
};

// Per-queue relay settings in the sluice_queues table (migration 2), and a cache of them for
// the relay's hot path. Several instances share one database, so the cache is refreshed
// periodically by its owner (the relay); a change made through this instance is cached at once.
class queue_modes {
 public:
  // `default_mode` (DELIVERY_MODE) is the mode of queues without a row.
  explicit queue_modes(store::pg_pool& pool, queue_mode default_mode = queue_mode::queue);

  // From the cache; queues never configured are in the default mode.
  queue_mode mode_of(std::string_view queue) const;
  // True once the cache was loaded from PostgreSQL: before that, mode_of() could send a
  // broadcast queue's messages to a RabbitMQ queue nobody reads.
  bool loaded() const { return loaded_; }

  // Reloads the whole table into the cache.
  boost::asio::awaitable<std::error_code> refresh(store::clock::time_point deadline);

  queue_mode default_mode() const { return default_mode_; }

  // Reads one queue's setting from PostgreSQL (not the cache: the API shows the truth).
  boost::asio::awaitable<std::tuple<std::error_code, queue_setting>> get(
      std::string queue, store::clock::time_point deadline);
  // Upserts one queue's setting and updates the cache.
  boost::asio::awaitable<std::error_code> set(std::string queue, queue_mode mode,
                                              store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
  queue_mode default_mode_;
  std::map<std::string, queue_mode, std::less<>> cache_;
  bool loaded_ = false;
};

}  // namespace sluice::relay
