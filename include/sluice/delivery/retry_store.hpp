#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

#include "sluice/delivery/parked_message.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

// sluice_delivery_retries (migration 6): deliveries waiting for a later attempt, and re-drives.
class retry_store {
 public:
  using system_clock = std::chrono::system_clock;

  explicit retry_store(store::pg_pool& pool);

  // Writes (or, for a message already parked for this subscription, replaces) the row, due at
  // `due`. Called before the RabbitMQ delivery is acked.
  boost::asio::awaitable<std::error_code> park(const parked_message& m,
                                               system_clock::time_point due,
                                               store::clock::time_point deadline);
  // Ordered subscriptions: parks `m` behind its partition's head (due never, until released).
  boost::asio::awaitable<std::error_code> park_behind(const parked_message& m,
                                                      store::clock::time_point deadline);
  // Ordered subscriptions: makes the lowest-id row of the partition waiting behind its head due
  // now; false when there is none (the partition is free again). The caller then tells its
  // retry_scheduler (expect(now)), or the row waits for the next poll.
  boost::asio::awaitable<std::tuple<std::error_code, bool>> release_next(
      std::string_view queue, std::string_view subscription, std::string_view partition,
      store::clock::time_point deadline);
  // Ordered subscriptions: partitions with parked rows (blocked), read at consumer start.
  boost::asio::awaitable<std::tuple<std::error_code, std::set<std::string>>> blocked_partitions(
      std::string_view queue, std::string_view subscription, store::clock::time_point deadline);

  // Claims up to `limit` due rows of subscriptions not paused, for `lease`; ordered by due time.
  boost::asio::awaitable<std::tuple<std::error_code, std::vector<parked_message>>> claim_due(
      std::size_t limit, std::chrono::milliseconds lease, store::clock::time_point deadline);
  // Deletes rows once their publish was confirmed.
  boost::asio::awaitable<std::error_code> remove(const std::vector<parked_message>& done,
                                                 store::clock::time_point deadline);
  // The earliest due time of any row, for the scheduler's wake-up; nullopt when none.
  boost::asio::awaitable<std::tuple<std::error_code, std::optional<system_clock::time_point>>>
  next_due(store::clock::time_point deadline);

  // Deletes up to `limit` rows of subscriptions that no longer exist and whose row has been
  // due (or, behind a partition head, its message accepted) for longer than `grace`: nothing
  // will ever claim them, and the grace keeps a subscription deleted and put again at once
  // from losing its retries. Returns the count deleted.
  boost::asio::awaitable<std::tuple<std::error_code, std::uint64_t>> remove_orphans(
      std::size_t limit, std::chrono::milliseconds grace, store::clock::time_point deadline);
  // All rows, waiting or claimed (for the sluice_delivery_retry_rows gauge).
  boost::asio::awaitable<std::tuple<std::error_code, std::uint64_t>> count(
      store::clock::time_point deadline);

  // The server's (or libpq's) text of the last failed statement, for the caller's log.
  const std::string& last_error() const { return last_error_; }

 private:
  std::error_code failed(const store::pg_result& r);

  store::pg_pool& pool_;
  std::string last_error_;
};

}  // namespace sluice::delivery
