#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/store/errc.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::store {

enum class insert_status : std::uint8_t {
  stored,     // a new row; its id is the message's id
  duplicate,  // already stored (same id, or same queue + transactionId); id is that row's
};

struct insert_outcome {
  insert_status status;
  uuid id;
};

struct insert_result {
  std::error_code ec;
  std::string sqlstate;
  std::string message;
  // When PostgreSQL refused one item's data (failure() == rejected): that item's input index.
  // Nothing of the batch was stored.
  std::optional<std::size_t> rejected_index;
  std::vector<insert_outcome> items;  // one per input item, in input order, when !ec

  failure_kind failure() const noexcept { return classify(ec, sqlstate); }
};

enum class insert_strategy {
  // One statement per batch: INSERT ... SELECT FROM unnest(<binary arrays>). The faster one
  // (tests/bench/store/insert_bench.cpp) and the default.
  unnest,
  // One prepared INSERT per row, pipelined with one Sync. Used to find the rejected item when
  // an unnest batch fails on its data.
  pipelined_rows,
};

// What the push path needs of PostgreSQL: one idempotent batch insert (contract below, at
// message_store). message_store is the real one; the push path's unit tests drive every
// failure, exceptions included, through a fake.
class message_writer {
 public:
  virtual ~message_writer() = default;
  virtual boost::asio::awaitable<insert_result> insert_batch(const std::vector<message>& batch,
                                                             clock::time_point deadline) = 0;
};

struct message_store_options {
  insert_strategy strategy = insert_strategy::unnest;
};

// The sluice_messages table (migration 1).
class message_store : public message_writer {
 public:
  explicit message_store(pg_pool& pool, message_store_options options = {});

  // Stores the batch in one transaction and one round trip (plus one more only when some
  // items turn out to be duplicates of rows already stored). Idempotent: an id or a
  // (queue, transactionId) already stored, or seen earlier in the same batch, yields
  // `duplicate` with the first row's id. A rejected batch stored nothing; after any other
  // error the batch may or may not have been committed (timeout, lost connection), and
  // retrying it is safe: what got stored comes back as `duplicate` with the same ids.
  boost::asio::awaitable<insert_result> insert_batch(const std::vector<message>& batch,
                                                     clock::time_point deadline) override;

  boost::asio::awaitable<std::error_code> ping(clock::time_point deadline);

 private:
  pg_pool& pool_;
  message_store_options options_;
};

}  // namespace sluice::store
