#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "sluice/core/uuid.hpp"
#include "sluice/delivery/dead_letter.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

// The outcome of a statement on the dead letters or the re-drive jobs: ec (a store::errc) and
// the server's SQLSTATE and text, for the HTTP layer's 503-or-500 choice.
using dlq_status = store::statement_status;

// What GET /api/v1/dlq and bulk re-drives select: every field optional. Times are Unix ms over
// dead_at, start inclusive, end exclusive.
struct dead_letter_filter {
  std::optional<std::string> queue;
  std::optional<std::string> subscription;
  std::optional<std::int64_t> start_ms;
  std::optional<std::int64_t> end_ms;
};

// A row's place in the listing order (dead_at, id, queue, subscription): a total order, since
// in broadcast mode one message id has a row per subscription, possibly with the same dead_at.
// dead_at in microseconds, PostgreSQL's precision, so a page never repeats or skips a row.
struct dead_letter_key {
  std::int64_t dead_us = 0;
  uuid id;
  std::string queue;
  std::string subscription;

  std::string encode() const;  // the list cursor's position
  static std::optional<dead_letter_key> decode(std::string_view position);
};

struct dead_letter_page {
  dlq_status status;
  std::vector<dead_letter> items;       // in (dead_at, id, queue, subscription) order
  std::optional<dead_letter_key> next;  // the last item's key when more rows follow
};

// sluice_dead_letters (migration 6) and the re-drives out of it. The message travels with the
// row (headers as a JSON object of strings, the same shape as sluice_delivery_retries.headers),
// so a re-drive copies it to a retry row in SQL and needs nothing else.
class dead_letter_store {
 public:
  explicit dead_letter_store(store::pg_pool& pool);

  // Writes the dead letter (a redelivered message dead-lettered again replaces its row) and, in
  // the same transaction, deletes the message's retry row of this subscription if one exists.
  // Called before the RabbitMQ delivery is acked.
  boost::asio::awaitable<std::error_code> insert(const dead_letter& d,
                                                 store::clock::time_point deadline);

  // Up to `limit` rows matching `filter` after `after`, oldest first.
  boost::asio::awaitable<dead_letter_page> list(const dead_letter_filter& filter,
                                                const std::optional<dead_letter_key>& after,
                                                std::size_t limit,
                                                store::clock::time_point deadline);

  // The rows of message `id` (with payload), narrowed by queue and subscription when given:
  // in broadcast mode one message has a row per subscription it failed on. Sorted by (queue,
  // subscription).
  boost::asio::awaitable<std::tuple<dlq_status, std::vector<dead_letter>>> find(
      const uuid& id, const std::optional<std::string>& queue,
      const std::optional<std::string>& subscription, store::clock::time_point deadline);

  // Deletes one row; false when it was not there.
  boost::asio::awaitable<std::tuple<dlq_status, bool>> remove(const uuid& id,
                                                              const std::string& queue,
                                                              const std::string& subscription,
                                                              store::clock::time_point deadline);

  // In ONE statement: deletes the row and writes the message's retry row (origin 'redrive',
  // attempt 1, due now; an existing retry row of the message is replaced). False when the row
  // was not there, or its subscription no longer exists (nothing written: the dead letter
  // stays, since a deleted subscription's retry rows are never published).
  boost::asio::awaitable<std::tuple<dlq_status, bool>> redrive_one(
      const uuid& id, const std::string& queue, const std::string& subscription,
      store::clock::time_point deadline);

  // Rows per queue, for sluice_dlq_records{queue}; queues without rows are absent.
  boost::asio::awaitable<std::tuple<dlq_status, std::vector<std::pair<std::string, std::int64_t>>>>
  count_by_queue(store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
};

// At most this many bytes of a response excerpt are stored, cut at a UTF-8 boundary.
inline constexpr std::size_t response_excerpt_max = 1024;
// `text` cut to `max` bytes and made valid UTF-8 (invalid bytes and NUL, which PostgreSQL's
// text refuses too, become U+FFFD), so PostgreSQL never refuses a dead letter because of a
// target's response.
std::string excerpt_of(std::string_view text, std::size_t max = response_excerpt_max);
// All of `text`, made text PostgreSQL accepts the same way: for what a message brings from
// RabbitMQ (its partition, its headers), which only the relay's own publishes guarantee.
std::string as_postgres_text(std::string_view text);

}  // namespace sluice::delivery
