#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/query/message_reader.hpp"
#include "sluice/query/query_params.hpp"
#include "sluice/store/pg_pool.hpp"
#include "sluice/store/pg_result.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::query {

// The partition listing counts distinct partitions exactly up to this many (each one index
// descent of the loose scan), then estimates.
inline constexpr std::uint64_t exact_partition_bound = 1'000;

struct partition_page {
  store::statement_status status;
  std::vector<std::string> items;
  bool more = false;  // a row follows the last item
  total_count total;
};

struct partition_page_request {
  std::string queue;
  sort_order sort = sort_order::asc;
  std::size_t limit = 100;
  std::size_t offset = 0;
  std::optional<std::string> after;  // a cursor's last partition
  std::optional<total_count> known_total;
};

struct queue_summary {
  std::string queue;
  total_count total;
  total_count unpublished;    // rows in the relay outbox
  total_count dead_lettered;  // rows in sluice_dead_letters (one per message and subscription)
  std::optional<std::int64_t> first_event_us;
  std::optional<std::int64_t> last_event_us;
};

struct queue_list {
  store::statement_status status;
  std::vector<queue_summary> items;
  bool more = false;
};

struct queue_list_request {
  std::size_t limit = 100;
  std::optional<std::string> after;  // a cursor's last queue
  // Only queues starting with one of these (a caller's token prefixes); empty = every queue.
  std::vector<std::string> prefixes;
};

// The store side of GET /api/v1/queues and GET /api/v1/queues/{queue}/partitions. Distinct
// values come from loose index scans (a recursive CTE that descends the index once per value),
// so neither reads all rows of a queue.
class queue_reader {
 public:
  explicit queue_reader(store::pg_pool& pool) : pool_(pool) {}

  boost::asio::awaitable<partition_page> partitions(const partition_page_request& r,
                                                    store::clock::time_point deadline);
  boost::asio::awaitable<queue_list> queues(const queue_list_request& r,
                                            store::clock::time_point deadline);

 private:
  boost::asio::awaitable<std::pair<store::statement_status, total_count>> count_partitions(
      const std::string& queue, store::clock::time_point deadline);
  // The planner's row estimate of `sql` (EXPLAIN (FORMAT JSON)) with one text parameter.
  boost::asio::awaitable<std::pair<store::statement_status, std::uint64_t>> estimate(
      const std::string& sql, const std::string& param, store::clock::time_point deadline);

  store::pg_pool& pool_;
};

}  // namespace sluice::query
