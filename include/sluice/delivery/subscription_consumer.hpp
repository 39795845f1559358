#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "sluice/amqp/client.hpp"
#include "sluice/amqp/settings.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/core/log_throttle.hpp"
#include "sluice/delivery/adaptive_limit.hpp"
#include "sluice/delivery/attempt_recorder.hpp"
#include "sluice/delivery/breaker_board.hpp"
#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/delivery/delivery_metrics.hpp"
#include "sluice/delivery/delivery_request.hpp"
#include "sluice/delivery/delivery_slots.hpp"
#include "sluice/delivery/partition_gate.hpp"
#include "sluice/delivery/retry_store.hpp"
#include "sluice/delivery/subscription.hpp"
#include "sluice/delivery/subscription_store.hpp"
#include "sluice/http/client.hpp"
#include "sluice/routing/route_lookup.hpp"
#include "sluice/worker/task_group.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

struct delivery_options {
  delivery_options() = default;

  // At stop, how long deliveries in flight may take before they are cancelled (left unacked:
  // RabbitMQ gives them out again).
  std::chrono::milliseconds stop_grace{5'000};
  // DELIVERY_RETRY_AFTER_MAX_MS: the cap on a target's Retry-After.
  std::chrono::milliseconds retry_after_max{3'600'000};
  // The longest a delivery waits unacknowledged for an open circuit's probe before it is parked
  // instead ("deferred"); the subscription's timeout when that is shorter.
  std::chrono::milliseconds max_hold{30'000};
  // Deadline of one retry/dead-letter/pause write.
  std::chrono::milliseconds store_timeout{5'000};
  // PostgreSQL could not take a retry or dead letter: the delivery goes back to RabbitMQ after
  // this pause (doubling per consecutive failure up to the max, so a down database is never
  // spun on).
  std::chrono::milliseconds store_backoff_initial{250};
  std::chrono::milliseconds store_backoff_max{5'000};
  amqp::queue_type queue_type = amqp::queue_type::quorum;  // RABBITMQ_QUEUE_TYPE
};

// Shared by the consumers of one delivery_service. The stores are the delivery pool's; a null
// store makes the step that needs it fail (the delivery goes back to RabbitMQ), a null recorder
// records nothing.
struct delivery_context {
  delivery_context(boost::asio::any_io_executor executor, std::shared_ptr<amqp::client> amqp,
                   http::client& http, metrics::registry& registry, breaker_board& breakers);

  boost::asio::any_io_executor executor;
  std::shared_ptr<amqp::client> amqp;
  http::client& http;
  delivery_metrics metrics;
  breaker_board& breakers;
  retry_store* retries = nullptr;
  dead_letter_store* dead_letters = nullptr;
  subscription_store* subscriptions = nullptr;
  attempt_recorder* recorder = nullptr;
  // A retry row was written due at this time (the retry scheduler's wake-up).
  std::function<void(std::chrono::system_clock::time_point)> on_parked;
  // What subscriptions with a route resolve through; null: no registry (no_route unless they
  // have a url).
  routing::route_lookup* routes = nullptr;
  delivery_options options;
};

// What readiness and the subscriptions API read of one consumer.
struct consumer_status {
  std::string queue;
  std::string name;
  std::string amqp_queue;  // the RabbitMQ queue consumed
  bool broadcast = false;
  bool consuming = false;     // basic.consume is active on a live channel
  std::size_t in_flight = 0;  // messages held (received, not yet acked or returned)
  std::uint32_t concurrency_limit = 0;
  std::string circuit;     // the target's breaker state
  std::string last_error;  // why the last attempt to consume failed ("" once consuming)
};

// One subscription on this instance. On every connection of the amqp client it opens a channel
// of its own, declares the subscription's topology (queue mode: the relay's sluice.<queue> with
// the relay's arguments; broadcast: the fanout exchange sluice.<queue>, the queue
// sluice.<queue>~<name> with the same arguments plus x-single-active-consumer for ordering
// "partition", and the binding), for ordered subscriptions reads the blocked partitions, sets
// the prefetch (concurrency; in batch mode at least batch.maxItems) and consumes.
//
// Each delivery: rate limiter -> the target's circuit breaker (waiting at most max_hold for a
// probe slot, else parked "deferred" with the same attempt number) -> a slot under the AIMD
// limit -> the HTTP request (or a place in the next batch) -> the verdict: 2xx ack; retryable
// parked in PostgreSQL (retry_store::park) then acked, or dead-lettered after the last attempt;
// other 4xx dead-lettered then acked; 410 dead-lettered, the subscription paused, consuming
// stopped at once. Every attempt is recorded. When PostgreSQL cannot take a retry or dead letter
// the delivery is not acked: it goes back to RabbitMQ (nack, requeue) after a growing pause.
// A lost channel cancels the deliveries in flight; RabbitMQ gives them out again.
class subscription_consumer : public std::enable_shared_from_this<subscription_consumer> {
 public:
  using clock = std::chrono::steady_clock;

  // `predecessor`: the consumer this one replaces; it starts once that one finished, so the
  // concurrency bound holds across a restart.
  subscription_consumer(std::shared_ptr<delivery_context> context,
                        std::shared_ptr<const subscription> definition, bool broadcast,
                        std::shared_ptr<subscription_consumer> predecessor);
  ~subscription_consumer();
  subscription_consumer(const subscription_consumer&) = delete;
  subscription_consumer& operator=(const subscription_consumer&) = delete;

  // The consumer's life: returns once it stopped and every delivery it started has ended.
  boost::asio::awaitable<void> run();
  void stop();
  void wake() { event_.notify_all(); }
  // Removed (broadcast): its queue sluice.<queue>~<name> is deleted once it finished, unless
  // keep_queue() came first (a consumer of the subscription added again took it over, and waits
  // for this one to finish, deletion included).
  void delete_queue_when_finished() { delete_queue_ = true; }
  void keep_queue() { delete_queue_ = false; }

  boost::asio::awaitable<void> wait_finished();
  bool finished() const { return finished_; }
  // A 410 paused the subscription (or is pausing it): it stopped itself.
  bool gone() const { return gone_; }
  consumer_status status() const;
  const std::shared_ptr<const subscription>& definition() const { return sub_; }
  bool broadcast() const { return broadcast_; }
  // Its breaker's key (with a route: of the target last resolved, "" before the first).
  const std::string& target() const { return target_; }
  // The breaker key of where a subscription's requests go (batch mode: its batch url); with a
  // route, of its fallback url ("" without one): the resolved target's key is known per attempt.
  static std::string target_of(const subscription& s);
  std::size_t held() const { return held_.size(); }
  // sluice_delivery_lag_seconds: now - the acceptance time of the oldest message held; with
  // none held, the lag the last one received had when it arrived (so an idle subscription
  // shows how far behind it last was, neither 0 nor a figure that grows while nothing waits);
  // 0 before the first.
  double lag_seconds(std::int64_t now_unix_ms) const;

 private:
  struct held_message;
  struct attempt_outcome;
  struct batch;
  enum class settled { acked, acked_unblocked, parked, abandoned };

  boost::asio::awaitable<std::error_code> declare_topology(std::shared_ptr<amqp::channel>& ch);
  boost::asio::awaitable<void> handle(amqp::delivery d);
  boost::asio::awaitable<void> run_step(std::shared_ptr<held_message> h, partition_gate::step s);
  boost::asio::awaitable<settled> deliver(held_message& h);
  boost::asio::awaitable<settled> park_behind(held_message& h);
  boost::asio::awaitable<attempt_outcome> attempt(held_message& h);
  boost::asio::awaitable<attempt_outcome> send_one(held_message& h);
  boost::asio::awaitable<attempt_outcome> join_batch(held_message& h);
  // With a route: where this attempt goes and its breaker key, or false and `out` failed
  // retryably (no_route, route_unavailable).
  boost::asio::awaitable<bool> resolve_target(bool for_batch, std::optional<target_address>& to,
                                              std::string& target, attempt_outcome& out);
  // With a route, once the waits for the rate, the breaker and a slot are over (up to the hold
  // bound): the route again (a cache hit), so a route changed or deactivated while the attempt
  // waited is not called. The latest answer is where the call goes; no target any more fails
  // as resolve_target does; another breaker key gives the old target's probe back and waits for
  // the new target's admission. False: `out` says why, nothing is called.
  boost::asio::awaitable<bool> recheck_target(bool for_batch, std::optional<target_address>& to,
                                              std::string& target, clock::time_point hold_until,
                                              attempt_outcome& out, bool& probe);
  boost::asio::awaitable<void> flush_batch(std::shared_ptr<batch> b);
  boost::asio::awaitable<bool> wait_for_rate(clock::time_point hold_until, attempt_outcome& out);
  boost::asio::awaitable<bool> admit(const std::string& target, clock::time_point bound,
                                     attempt_outcome& out, bool& probe);
  void defer(attempt_outcome& out, clock::duration wait, std::string why);
  boost::asio::awaitable<bool> take_slot(clock::time_point hold_until, attempt_outcome& out);
  void release_slot();
  void learn(const std::string& target, const attempt_outcome& o, bool probe);
  boost::asio::awaitable<settled> settle(held_message& h, const attempt_outcome& o);
  boost::asio::awaitable<settled> dead_letter(held_message& h, const attempt_outcome& o,
                                              const char* reason);
  boost::asio::awaitable<settled> finish_acked(held_message& h);
  boost::asio::awaitable<settled> give_back(held_message& h, const char* what,
                                            const std::error_code& ec);
  void record(const held_message& h, const attempt_outcome& o, const char* outcome);
  void stored_ok() { store_backoff_ = context_->options.store_backoff_initial; }
  store::clock::time_point store_deadline() const;
  boost::asio::awaitable<void> delete_own_queue();

  std::shared_ptr<delivery_context> context_;
  std::shared_ptr<const subscription> sub_;
  bool broadcast_;
  std::shared_ptr<subscription_consumer> predecessor_;
  std::string amqp_queue_;
  std::string
      target_;  // breaker key of the url (batch mode: of the batch url; route: see target())
  signing_keys keys_;
  consumer_series series_;
  adaptive_limit limit_;
  delivery_slots slots_;  // under limit_: HTTP requests in flight (a batch counts once)
  rate_limiter rate_;
  std::chrono::milliseconds hold_bound_;
  std::optional<partition_gate> gate_;
  std::map<partition_gate::ticket, std::shared_ptr<held_message>> waiting_;
  partition_gate::ticket next_ticket_ = 1;
  std::shared_ptr<batch> open_batch_;
  worker::task_group handlers_;
  async_event event_;
  async_event finished_event_;
  std::multiset<std::int64_t> held_;
  std::int64_t last_lag_ms_ = 0;
  std::chrono::milliseconds store_backoff_;
  bool stopping_ = false;
  bool finished_ = false;
  bool consuming_ = false;
  bool ended_ = false;
  bool gone_ = false;
  bool delete_queue_ = false;
  clock::time_point stop_deadline_{};
  std::string last_error_;
  std::mt19937_64 rng_;
  log_throttle log_throttle_;
};

}  // namespace sluice::delivery
