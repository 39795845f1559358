#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "sluice/amqp/client.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/core/message.hpp"
#include "sluice/relay/log_limiter.hpp"
#include "sluice/relay/pending_queue.hpp"
#include "sluice/relay/publish_handoff.hpp"
#include "sluice/relay/queue_modes.hpp"
#include "sluice/relay/relay_metrics.hpp"
#include "sluice/relay/topology_declarer.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

// The in-memory path: the batches the push path just committed wait in a pending_queue, and
// one loop publishes them in commit order as confirm-window slots free up. A message that
// waited longer than `defer_after` (half the sweeper's grace period) is given up to the
// sweeper, so this path only publishes rows no sweeper can have claimed yet.
class pending_publisher {
 public:
  using clock = std::chrono::steady_clock;

  pending_publisher(std::size_t max_items, std::size_t max_bytes,
                    std::chrono::milliseconds defer_after, std::shared_ptr<amqp::client> client,
                    queue_modes& modes, topology_declarer& declarer, publish_handoff& handoff,
                    relay_metrics& metrics);
  pending_publisher(const pending_publisher&) = delete;
  pending_publisher& operator=(const pending_publisher&) = delete;

  // O(batch), never blocks; a batch that does not fit is left to the sweeper.
  void push(std::vector<message> batch);
  // Something this loop waits for happened: a slot freed, the connection changed, modes loaded.
  void wake() {
    if (wake_.waiters() != 0)
      wake_.notify_all();
  }

  // Publishes until stop() and then, while connected, until the queue is empty or the drain
  // deadline passed.
  boost::asio::awaitable<void> run();
  void stop(clock::time_point drain_deadline);

  const pending_queue& queue() const { return fifo_; }

 private:
  void defer_aged(clock::time_point now);
  // When the loop must look again without being woken: the front message's deferral (or the
  // drain deadline).
  clock::time_point next_deadline() const;
  bool connected() const { return client_->state() == amqp::client_state::connected; }

  pending_queue fifo_;
  std::chrono::milliseconds defer_after_;
  std::shared_ptr<amqp::client> client_;
  queue_modes& modes_;
  topology_declarer& declarer_;
  publish_handoff& handoff_;
  relay_metrics& metrics_;
  bool stopping_ = false;
  clock::time_point drain_deadline_{};
  async_event wake_;  // messages queued, a slot freed, the connection changed, stopping
  async_event stop_;  // stopping (ends a retry pause that pushes must not end)
  log_limiter deferred_log_, overflow_log_;
};

}  // namespace sluice::relay
