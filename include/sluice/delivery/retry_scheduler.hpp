#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "sluice/amqp/client.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/delivery/parked_message.hpp"
#include "sluice/delivery/retry_store.hpp"
#include "sluice/delivery/subscription_registry.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/relay/log_limiter.hpp"
#include "sluice/relay/queue_modes.hpp"
#include "sluice/relay/retry_backoff.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

struct retry_scheduler_options {
  // DELIVERY_RETRY_POLL_MS: how often rows nobody announced with expect() are looked for
  // (rows other instances parked, re-drives, leases that ran out).
  std::chrono::milliseconds poll{1'000};
  std::size_t batch = 200;  // rows claimed per statement
  // A claimed row is invisible to other schedulers this long: far more than one round's
  // publishes and confirms take, so a row is published twice only after a crash or an outage.
  std::chrono::milliseconds lease{30'000};
  std::chrono::milliseconds statement_timeout{5'000};
  // Bound of one round's wait for publish slots and confirms; what is not confirmed by then
  // stays claimed until its lease runs out.
  std::chrono::milliseconds confirm_timeout{10'000};
  // How often the row count (the gauge) is refreshed and rows of deleted subscriptions removed.
  std::chrono::milliseconds housekeeping_interval{5'000};
  std::size_t orphan_batch = 100;
  // Pause after a failed statement: doubles from min to max (PostgreSQL away must not make the
  // loop spin on the pool's instant connection_failed).
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{5'000};
};

// Whether a subscription delivers its partitions in order (ordering "partition"): rows of such
// a subscription that come back from a failed attempt carry x-sluice-released.
using ordered_hook = std::function<bool(std::string_view queue, std::string_view subscription)>;

// The hook answered by the subscription registry (which must outlive the scheduler).
inline ordered_hook ordered_by(const subscription_registry& registry) {
  return [&registry](std::string_view queue, std::string_view subscription) {
    const auto s = registry.find(queue, subscription);
    return s && s->ordering == ordering::partition;
  };
}

// Publishes parked deliveries (sluice_delivery_retries) when they are due: claims due rows in
// batches, publishes each to its subscription's RabbitMQ queue on the default exchange
// (persistent, mandatory, with a confirm) and deletes the rows RabbitMQ acked. A row whose
// publish was returned, nacked or never confirmed stays claimed until its lease runs out and is
// published again then. Wakes at the earliest due time it knows of (expect(), the table's own
// next due row) and at least every `poll`. One loop, owned: stop() ends it and waits for it.
// Loop-thread only.
class retry_scheduler : public std::enable_shared_from_this<retry_scheduler> {
 public:
  using clock = std::chrono::steady_clock;
  using system_clock = std::chrono::system_clock;

  // `client` must have its publisher enabled (client_options::enable_publisher). `modes` is
  // refreshed by its owner; nothing is claimed before it is loaded (a queue's mode names the
  // RabbitMQ queue). `store`, `modes` and `registry` must outlive the scheduler.
  static std::shared_ptr<retry_scheduler> create(
      boost::asio::any_io_executor executor, retry_scheduler_options options, retry_store& store,
      std::shared_ptr<amqp::client> client, relay::queue_modes& modes, metrics::registry& registry,
      ordered_hook is_ordered = {});
  retry_scheduler(const retry_scheduler&) = delete;
  retry_scheduler& operator=(const retry_scheduler&) = delete;

  void start();
  // Ends the loop after its current round (bounded by confirm_timeout) and waits for it. Stop
  // the scheduler before its client, so that no confirm of the last round is lost.
  boost::asio::awaitable<void> stop();

  // Called after this instance parked a row due at `due`: the loop wakes then rather than at
  // its next poll.
  void expect(system_clock::time_point due);

  // The message as published for a claimed row (exposed for tests).
  static amqp::outgoing_message to_outgoing(const parked_message& row, bool broadcast,
                                            bool released);

  bool running() const { return running_; }

 private:
  struct metrics_set {
    explicit metrics_set(metrics::registry& registry);
    metrics::counter& published;
    metrics::counter& returned;
    metrics::counter& nacked;
    metrics::counter& failed;
    metrics::gauge& due;
    metrics::gauge& rows;
  };

  retry_scheduler(boost::asio::any_io_executor executor, retry_scheduler_options options,
                  retry_store& store, std::shared_ptr<amqp::client> client,
                  relay::queue_modes& modes, metrics::registry& registry, ordered_hook is_ordered);

  boost::asio::awaitable<void> run();
  // One claim and its publishes; the count claimed, or nullopt when the claim failed.
  boost::asio::awaitable<std::optional<std::size_t>> round();
  // Publishes the rows and waits for their outcomes; returns the acked ones.
  boost::asio::awaitable<std::vector<parked_message>> publish(std::vector<parked_message> rows);
  boost::asio::awaitable<void> remove_published();
  boost::asio::awaitable<void> housekeeping();
  // The wake-up time after a round: the earliest of expect()'s, the table's next due row and
  // the next poll.
  boost::asio::awaitable<clock::time_point> next_wake(bool claimed_any);
  void failed_statement(const char* what);
  bool connected() const { return client_->ready() && client_->get_publisher(); }

  boost::asio::any_io_executor executor_;
  retry_scheduler_options options_;
  retry_store& store_;
  std::shared_ptr<amqp::client> client_;
  relay::queue_modes& modes_;
  metrics_set metrics_;
  ordered_hook is_ordered_;

  bool started_ = false;
  bool running_ = false;
  bool stopping_ = false;
  async_event wake_;  // expect(), a connection state change, stop()
  async_event done_;  // run() ended
  std::optional<system_clock::time_point> expected_;
  // Rows RabbitMQ acked whose delete failed: deleted before the next claim (their claim token
  // keeps a late delete from touching a row parked again meanwhile).
  std::vector<parked_message> to_remove_;
  clock::time_point next_housekeeping_{};
  relay::retry_backoff backoff_;
  relay::log_limiter store_log_;
  relay::log_limiter publish_log_;
};

}  // namespace sluice::delivery
