#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sluice/amqp/client.hpp"
#include "sluice/amqp/settings.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/core/message.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/push/stored_sink.hpp"
#include "sluice/relay/pending_queue.hpp"
#include "sluice/relay/publish_marker.hpp"
#include "sluice/relay/queue_modes.hpp"
#include "sluice/relay/relay_store.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

struct relay_options {
  relay_options() = default;

  amqp::client_options client;  // RABBITMQ_URL, _HEARTBEAT_SEC, _CONFIRM_WINDOW
  amqp::queue_type queue_type = amqp::queue_type::quorum;  // RABBITMQ_QUEUE_TYPE
  std::size_t queue_max = 200'000;                         // RELAY_QUEUE_MAX
  std::size_t queue_max_bytes = 256ULL << 20;              // RELAY_QUEUE_MAX_BYTES
  std::chrono::milliseconds sweep_interval{1000};          // RELAY_SWEEP_INTERVAL_MS
  claim_options claim;  // RELAY_SWEEP_BATCH, RELAY_SWEEP_GRACE_MS, RELAY_CLAIM_LEASE_MS
  std::chrono::milliseconds modes_refresh_interval{5000};
  std::chrono::milliseconds statement_timeout{5000};
  marker_options marker;
  // True once the schema is migrated (the push service applies the migrations); until then the
  // relay does not query PostgreSQL. Empty: always true.
  std::function<bool()> schema_ready;
};

struct relay_health {
  bool ok = false;
  std::string detail;
};

// Publishes every committed message to RabbitMQ and marks its row published after the
// broker's confirm. Two paths lead there:
//   - in memory: stored() queues the batch the push path just committed (never waiting, never
//     failing a push); one loop publishes the queue in commit order as confirm-window slots
//     free up. A message that waited longer than half the grace period is given up to the
//     sweeper, so the in-memory path only publishes rows no sweeper can have claimed yet.
//   - the sweeper: every sweep interval, and right after a (re)connect, it claims rows older
//     than the grace period that nobody marked (a crash, an outage, a full memory queue,
//     replayed buffer records) and publishes them in id order.
// Delivery is at-least-once: a crash between publish and mark, or a connection lost before
// the confirm, publishes a row again; consumers deduplicate by message_id. Rows this instance
// has in flight are never claimed by its own sweeper.
class relay_service final : public push::stored_sink,
                            public std::enable_shared_from_this<relay_service> {
 public:
  using clock = std::chrono::steady_clock;

  static std::shared_ptr<relay_service> create(boost::asio::any_io_executor executor,
                                               store::pg_pool& pool, queue_modes& modes,
                                               metrics::registry& metrics, relay_options options);
  ~relay_service() override;
  relay_service(const relay_service&) = delete;
  relay_service& operator=(const relay_service&) = delete;

  // From the push path, on the loop thread: O(batch), never blocks.
  void stored(std::vector<message> batch) override;

  // Connects (in the background, with reconnects) and starts the loops.
  void start();
  // Stops taking messages, lets the in-memory queue and the confirm window drain within
  // `grace` (while connected), closes the connection, then flushes the marks of what was
  // confirmed (bounded too). What is left is published later by a sweeper.
  boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);

  // For /health/ready: connected and not blocked.
  relay_health health() const;
  const std::shared_ptr<amqp::client>& client() const { return client_; }
  std::size_t queued() const { return fifo_.size(); }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using name_set = std::unordered_set<std::string, string_hash, std::equal_to<>>;
  enum class declare_outcome { declared, retry, refused };

  // Logs a recurring condition at most once per period, with the count of those not logged.
  struct log_limiter {
    clock::time_point next{};
    std::uint64_t suppressed = 0;
    bool allow(clock::time_point now, std::chrono::seconds period = std::chrono::seconds(10));
  };

  relay_service(boost::asio::any_io_executor executor, store::pg_pool& pool, queue_modes& modes,
                metrics::registry& metrics, relay_options options);

  void spawn(boost::asio::awaitable<void> (relay_service::*loop)(), const char* name);
  boost::asio::awaitable<void> publish_loop();
  boost::asio::awaitable<void> sweep_loop();
  boost::asio::awaitable<claim_result> claim();
  // Hands claimed rows to the publisher in id order; the ids of rows it could not hand over
  // (connection lost, stopping) are appended to `left`.
  boost::asio::awaitable<std::size_t> publish_claimed(std::vector<message>& rows,
                                                      std::vector<uuid>& left);
  boost::asio::awaitable<void> backlog_loop();
  boost::asio::awaitable<void> modes_loop();
  boost::asio::awaitable<void> marker_loop();

  bool connected() const;
  bool schema_ready() const { return !options_.schema_ready || options_.schema_ready(); }
  bool window_open() const;
  void defer_aged(clock::time_point now);
  // Forgets what was declared when the client is on a new connection.
  void sync_connection();
  bool is_declared(std::string_view queue, queue_mode mode) const;
  boost::asio::awaitable<declare_outcome> declare(std::string queue, queue_mode mode);
  // Hands one message to the publisher. When it was not accepted it stays unpublished for the
  // sweeper: because the publisher cannot take anything now, or because this message can
  // never be encoded (the other messages are not held up by it).
  enum class handoff { sent, publisher_unavailable, unencodable };
  boost::asio::awaitable<handoff> publish(message m, queue_mode mode);
  void on_result(const uuid& id, const amqp::publish_result& r);
  void on_state(amqp::client_state state);
  boost::asio::awaitable<void> hold_in_flight();
  void collect();

  boost::asio::any_io_executor executor_;
  queue_modes& modes_;
  relay_options options_;
  relay_store store_;
  publish_marker marker_;
  std::shared_ptr<amqp::client> client_;
  std::shared_ptr<amqp::publisher> publisher_;
  pending_queue fifo_;
  std::chrono::milliseconds defer_after_;

  // Published by this instance, not yet marked (or given up): its sweeper skips them.
  std::unordered_set<uuid, uuid_hash> in_flight_;
  bool was_up_ = false;  // the client was connected (or blocked) at the last state change
  name_set declared_queues_;
  name_set declared_exchanges_;
  std::uint64_t declared_generation_ = 0;
  const void* declared_connection_ = nullptr;
  std::shared_ptr<amqp::channel> declare_channel_;
  std::unordered_map<std::string, clock::time_point> refused_until_;

  bool started_ = false;
  bool stopping_ = false;
  clock::time_point drain_deadline_{};
  std::size_t loops_running_ = 0;
  bool publish_loop_running_ = false;
  async_event wake_;        // the publish loop: messages queued, slots free, state changed
  async_event sweep_kick_;  // the sweeper: reconnected, or stopping
  async_event stop_event_;  // periodic loops: stopping
  async_event loops_done_;

  log_limiter deferred_log_, overflow_log_, nack_log_, return_log_, sweep_log_, backlog_log_,
      modes_log_, unencodable_log_;
  std::uint64_t reconnects_reported_ = 0;

  metrics::counter& published_;
  metrics::counter& nacked_;
  metrics::counter& returned_;
  metrics::counter& failed_;
  metrics::counter& deferred_;
  metrics::counter& swept_;
  metrics::histogram& confirm_latency_;
  metrics::gauge& backlog_;
  metrics::gauge& backlog_age_;
  metrics::gauge& queue_items_;
  metrics::gauge& unconfirmed_;
  metrics::gauge& amqp_connected_;
  metrics::gauge& amqp_blocked_;
  metrics::counter& amqp_reconnects_;
};

}  // namespace sluice::relay
