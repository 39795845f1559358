#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/amqp/client.hpp"
#include "sluice/amqp/settings.hpp"
#include "sluice/core/message.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/push/stored_sink.hpp"
#include "sluice/relay/backlog_reader.hpp"
#include "sluice/relay/loop_group.hpp"
#include "sluice/relay/outbox_sweeper.hpp"
#include "sluice/relay/pending_publisher.hpp"
#include "sluice/relay/publish_handoff.hpp"
#include "sluice/relay/publish_marker.hpp"
#include "sluice/relay/queue_mode_follower.hpp"
#include "sluice/relay/queue_modes.hpp"
#include "sluice/relay/relay_metrics.hpp"
#include "sluice/relay/relay_store.hpp"
#include "sluice/relay/schema_latch.hpp"
#include "sluice/relay/topology_declarer.hpp"
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
//   - in memory (pending_publisher): stored() queues the batch the push path just committed
//     (never waiting, never failing a push); one loop publishes the queue in commit order as
//     confirm-window slots free up. A message that waited longer than half the grace period is
//     given up to the sweeper, so the in-memory path only publishes rows no sweeper can have
//     claimed yet.
//   - the sweeper (outbox_sweeper): every sweep interval, and right after a (re)connect, it
//     claims rows older than the grace period that nobody marked (a crash, an outage, a full
//     memory queue, replayed buffer records) and publishes them in id order.
// Both hand messages over through one publish_handoff; confirmed ids go to the publish_marker.
// Delivery is at-least-once: a crash between publish and mark, or a connection lost before
// the confirm, publishes a row again; consumers deduplicate by message_id. Rows this instance
// has in flight are never claimed by its own sweeper.
// This class only composes them: start() spawns every loop into one loop_group, stop() tells
// each to end and waits for them there.
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

  // The schema is migrated (relay_options::schema_ready now holds): the loops that write to
  // PostgreSQL may start. Called by the push service's owner.
  void schema_ready() { schema_.poke(); }

  // For /health/ready: connected and not blocked.
  relay_health health() const;
  const std::shared_ptr<amqp::client>& client() const { return client_; }
  std::size_t queued() const { return pending_.queue().size(); }

 private:
  relay_service(boost::asio::any_io_executor executor, store::pg_pool& pool, queue_modes& modes,
                metrics::registry& metrics, relay_options options);

  void spawn(const char* name, boost::asio::awaitable<void> loop);
  void on_state(amqp::client_state state);
  void collect();

  relay_options options_;
  relay_metrics metrics_;
  relay_store store_;
  publish_marker marker_;
  std::shared_ptr<amqp::client> client_;
  std::shared_ptr<amqp::publisher> publisher_;
  schema_latch schema_;
  topology_declarer declarer_;
  std::shared_ptr<publish_handoff> handoff_;
  pending_publisher pending_;
  outbox_sweeper sweeper_;
  backlog_reader backlog_;
  queue_mode_follower follower_;
  // Last: its loops refer to everything above.
  loop_group loops_;

  bool started_ = false;
  bool stopping_ = false;
  bool was_up_ = false;  // the client was connected (or blocked) at the last state change
  std::uint64_t reconnects_reported_ = 0;
};

}  // namespace sluice::relay
