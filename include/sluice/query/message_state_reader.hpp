#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/core/uuid.hpp"
#include "sluice/query/message_reader.hpp"
#include "sluice/store/pg_pool.hpp"
#include "sluice/store/pg_result.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::query {

// Where one subscription is with one message, from the delivery tables (migration 6).
struct subscription_state {
  std::string subscription;
  bool subscribed = false;    // the subscription still exists
  std::int64_t attempts = 0;  // recorded attempts (kept DELIVERY_ATTEMPTS_RETENTION_HOURS)
  std::optional<std::int64_t> last_attempt_ms;
  std::optional<std::string> last_outcome;
  std::optional<std::int64_t> last_status;
  // A row of sluice_delivery_retries: the next attempt is scheduled.
  std::optional<std::int64_t> retry_attempt;
  std::optional<std::int64_t> retry_due_ms;
  std::optional<std::string> retry_origin;
  // A row of sluice_dead_letters.
  std::optional<std::string> dead_reason;
  std::optional<std::int64_t> dead_attempts;
  std::optional<std::int64_t> dead_last_status;
  std::optional<std::int64_t> dead_at_ms;
};

struct message_state {
  store::statement_status status;
  std::optional<stored_message> message;  // nullopt: no such message
  std::int64_t stored_ms = 0;
  // A row of sluice_relay_outbox: RabbitMQ has not confirmed the message yet.
  bool unpublished = false;
  std::vector<subscription_state> subscriptions;
};

// The store side of GET /api/v1/messages/{id}: primary-key lookups and the delivery tables'
// message-id indexes.
class message_state_reader {
 public:
  explicit message_state_reader(store::pg_pool& pool) : pool_(pool) {}

  boost::asio::awaitable<message_state> read(const uuid& id, store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
};

}  // namespace sluice::query
