#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/delivery/attempt_recorder.hpp"
#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

// A record's place in one message's attempts, in time order (attempted_at, queue,
// subscription, attempt, outcome): the rows have no key of their own.
struct attempt_key {
  std::int64_t attempted_us = 0;
  std::string queue;
  std::string subscription;
  std::int32_t attempt = 0;
  std::string outcome;

  std::string encode() const;  // the list cursor's position
  static std::optional<attempt_key> decode(std::string_view position);
};

struct attempt_page {
  dlq_status status;
  std::vector<attempt_record> items;
  std::optional<attempt_key> next;  // the last item's key when more rows follow
};

// Reads sluice_delivery_attempts (GET /api/v1/messages/{id}/deliveries); attempt_recorder
// writes it.
class attempt_reader {
 public:
  explicit attempt_reader(store::pg_pool& pool);

  boost::asio::awaitable<attempt_page> list(const uuid& message_id,
                                            const std::optional<attempt_key>& after,
                                            std::size_t limit, store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
};

}  // namespace sluice::delivery
