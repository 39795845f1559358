#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/core/uuid.hpp"
#include "sluice/query/query_cursor.hpp"
#include "sluice/query/query_params.hpp"
#include "sluice/store/pg_pool.hpp"
#include "sluice/store/pg_result.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::query {

// One stored message as the query API shows it.
struct stored_message {
  uuid id;
  std::string queue;
  std::string partition;
  std::int64_t created_ms = 0;
  std::int64_t event_us = 0;  // coalesce(event_time, created_at)
  std::optional<std::string> trace_id;
  std::optional<std::string> transaction_id;
  std::string payload;  // the JSON text as pushed
};

struct total_count {
  std::uint64_t value = 0;
  bool is_estimate = false;
};

struct message_page {
  store::statement_status status;
  std::vector<stored_message> items;
  // The last item's position when more rows follow it.
  std::optional<message_position> next;
  total_count total;
};

// A page of a queue's messages in (eventTime, id) order, asc or desc.
struct message_page_request {
  std::string queue;
  message_filter filter;
  sort_order sort = sort_order::asc;
  std::size_t limit = 100;
  std::size_t offset = 0;                  // page numbers: (page - 1) × limit, bounded
  std::optional<message_position> after;   // a cursor: the page starts after it
  std::optional<total_count> known_total;  // carried by the cursor: not counted again
};

// The store side of GET /api/v1/queues/{queue}/messages. Every statement walks
// sluice_messages_queue_time or sluice_messages_queue_partition_time (migration 8), starting
// at the cursor: a page costs its own rows, not the rows before it.
class message_reader {
 public:
  explicit message_reader(store::pg_pool& pool) : pool_(pool) {}

  boost::asio::awaitable<message_page> page(const message_page_request& r,
                                            store::clock::time_point deadline);

  // The rows matching the filters: exact up to exact_total_bound, else the planner's estimate
  // (never below the bound).
  boost::asio::awaitable<std::pair<store::statement_status, total_count>> count(
      const std::string& queue, const message_filter& f, store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
};

// Year 9999 in Unix µs: a cursor time beyond it is refused before PostgreSQL sees it.
inline constexpr std::int64_t max_time_us = 253'402'300'799'000'000;
inline constexpr std::int64_t min_time_us = -62'135'596'800'000'000;  // year 1

// timestamptz in binary format, from Unix µs.
void add_time_us(store::pg_params& params, std::int64_t unix_us);

// "Plan Rows" of the top node of an EXPLAIN (FORMAT JSON) answer.
std::optional<std::uint64_t> planned_rows(std::string_view explain_json);

}  // namespace sluice::query
