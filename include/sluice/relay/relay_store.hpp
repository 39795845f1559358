#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

struct claim_options {
  std::size_t batch = 1000;
  // Rows stored more recently than this belong to the in-memory path of the instance that
  // stored them.
  std::chrono::milliseconds grace{30000};
  // How long other instances' sweepers keep off the claimed rows.
  std::chrono::milliseconds lease{30000};
};

struct claim_result {
  std::error_code ec;
  std::string error_text;
  std::vector<message> rows;  // in id order (acceptance order)
};

struct backlog_result {
  std::error_code ec;
  std::string error_text;
  std::uint64_t rows = 0;  // rows in the outbox (stored, not yet confirmed by RabbitMQ)
  // Age of the oldest of them (by acceptance time); nullopt when there are none.
  std::optional<double> oldest_age_seconds;
};

struct mark_result {
  std::error_code ec;
  std::string error_text;
  std::uint64_t marked = 0;  // outbox rows deleted now (not by an earlier mark)
};

// The relay's statements on sluice_relay_outbox and sluice_messages (migrations 1 to 3). Each
// is one round trip.
class relay_store {
 public:
  explicit relay_store(store::pg_pool& pool);

  // Claims up to `batch` rows that nobody published, that are older than the grace period and
  // that no live claim covers, in one statement: rows another transaction is claiming at the
  // same moment are skipped (FOR UPDATE SKIP LOCKED), so two sweepers never get the same row
  // while a lease runs.
  boost::asio::awaitable<claim_result> claim(const claim_options& options,
                                             store::clock::time_point deadline);

  // Gives up claims this instance will not use (it lost the broker, or is stopping), so other
  // sweepers need not wait for the lease to run out.
  boost::asio::awaitable<std::error_code> release(std::span<const uuid> ids,
                                                  store::clock::time_point deadline);

  // Claims rows this instance already published but has no confirm for, when its connection
  // is lost: it re-sends them after reconnecting, and without the claim another instance's
  // sweeper could take them meanwhile (once older than the grace period) and publish them too.
  boost::asio::awaitable<std::error_code> hold(std::span<const uuid> ids,
                                               std::chrono::milliseconds lease,
                                               store::clock::time_point deadline);

  // Records `ids` as published: deletes their outbox rows (those still there).
  boost::asio::awaitable<mark_result> mark_published(std::span<const uuid> ids,
                                                     store::clock::time_point deadline);

  boost::asio::awaitable<backlog_result> backlog(store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
};

}  // namespace sluice::relay
