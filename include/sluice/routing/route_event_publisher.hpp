#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "sluice/amqp/client.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/core/log_throttle.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/routing/route_store.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::routing {

struct route_event_publisher_options {
  route_event_publisher_options() = default;

  // How often unpublished events are looked for when nothing woke the publisher: changes made
  // on another instance while that one's publisher could not take the lock wait this long.
  std::chrono::milliseconds poll{1000};
  std::size_t batch = 100;  // events per transaction
  // How long a batch may wait for RabbitMQ's confirms (the transaction stays open meanwhile).
  std::chrono::milliseconds confirm_timeout{10000};
  std::chrono::milliseconds statement_timeout{5000};
  // After a failed channel setup or batch: the next attempt.
  std::chrono::milliseconds retry_interval{1000};
};

// The outbox of sluice_route_events (published_at IS NULL) to the durable fanout exchange
// sluice.route-events: persistent messages, publisher confirms, published_at set once
// confirmed. One batch is one transaction that first takes pg_try_advisory_xact_lock(key):
// on all instances only one publishes at a time, the lock ends with the transaction (or its
// connection, if the instance dies), no lease to expire. The batch is the oldest unpublished
// events in registry_version order; each one's message is confirmed before the batch is marked
// and the next one read, so the exchange gets them in order. At-least-once: a batch whose
// confirms or mark fail is published again, in order, by whichever instance takes the lock
// next; consumers drop duplicates by registry_version (the message_id).
//
// Uses its own channel (and amqp::publisher) on the client's connection, set up again after a
// reconnect. Loop thread only.
//
// Metrics: sluice_route_events_published_total, sluice_route_events_unpublished.
class route_event_publisher : public std::enable_shared_from_this<route_event_publisher> {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr const char* exchange = "sluice.route-events";
  // "sluice-r" in ASCII: the advisory lock of the publishers of all instances.
  static constexpr std::int64_t lock_key = 0x736c756963652d72;

  static std::shared_ptr<route_event_publisher> create(boost::asio::any_io_executor executor,
                                                       std::shared_ptr<amqp::client> client,
                                                       store::pg_pool& pool,
                                                       metrics::registry& metrics,
                                                       route_event_publisher_options options = {});
  ~route_event_publisher();
  route_event_publisher(const route_event_publisher&) = delete;
  route_event_publisher& operator=(const route_event_publisher&) = delete;

  void start();
  // Ends the loop; a batch waiting for confirms is abandoned (rolled back, published again
  // later by some instance).
  boost::asio::awaitable<void> stop();
  // A change was committed (this instance's API, or a notification): look now, not at the poll.
  void wake();

  // Events this instance published and marked since start.
  std::uint64_t published() const { return published_; }

 private:
  enum class round { idle, more, failed };

  route_event_publisher(boost::asio::any_io_executor executor, std::shared_ptr<amqp::client> client,
                        store::pg_pool& pool, metrics::registry& metrics,
                        route_event_publisher_options options);
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<std::error_code> set_up_channel();
  boost::asio::awaitable<void> drop_channel();
  boost::asio::awaitable<round> publish_round();
  // Reads the backlog for the gauge (when no round runs: RabbitMQ away).
  boost::asio::awaitable<void> refresh_backlog();
  // Publishes `events` in order and waits for every confirm; false if any was not acked.
  boost::asio::awaitable<bool> publish_confirmed(const std::vector<route_event>& events);
  bool channel_open() const;

  boost::asio::any_io_executor executor_;
  std::shared_ptr<amqp::client> client_;
  store::pg_pool& pool_;
  route_event_publisher_options options_;
  std::shared_ptr<amqp::channel> channel_;
  std::shared_ptr<amqp::publisher> publisher_;
  bool stopping_ = false;
  bool running_ = false;
  bool woken_ = false;
  std::uint64_t published_ = 0;
  async_event event_;
  log_throttle db_log_;
  metrics::counter& published_total_;
  metrics::gauge& unpublished_;
};

// The message of one event: exchange sluice.route-events, routing key the action, body
// to_json(e), content_type application/json, persistent, message_id
// "route-event-<registry_version>", type "route.<action>", timestamp its created_at.
amqp::outgoing_message route_event_message(const route_event& e);

}  // namespace sluice::routing
