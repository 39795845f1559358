#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "sluice/amqp/client.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/relay/log_limiter.hpp"
#include "sluice/relay/publish_handoff.hpp"
#include "sluice/relay/queue_modes.hpp"
#include "sluice/relay/relay_metrics.hpp"
#include "sluice/relay/relay_store.hpp"
#include "sluice/relay/schema_latch.hpp"
#include "sluice/relay/topology_declarer.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

struct sweeper_options {
  std::chrono::milliseconds interval{1000};
  claim_options claim;
  std::chrono::milliseconds statement_timeout{5000};
};

// Every interval, and right after a (re)connect, claims outbox rows older than the grace
// period that nobody marked (a crash, an outage, a full memory queue, replayed buffer records)
// and publishes them in id order. Rows this instance has in flight are skipped; claims it
// cannot use (connection lost, stopping) are released at once for other sweepers.
class outbox_sweeper {
 public:
  using clock = std::chrono::steady_clock;

  outbox_sweeper(sweeper_options options, relay_store& store, std::shared_ptr<amqp::client> client,
                 queue_modes& modes, schema_latch& schema, topology_declarer& declarer,
                 publish_handoff& handoff, relay_metrics& metrics);
  outbox_sweeper(const outbox_sweeper&) = delete;
  outbox_sweeper& operator=(const outbox_sweeper&) = delete;

  // Sweep now rather than at the end of the interval (the connection is back).
  void kick() { kick_.notify_all(); }

  boost::asio::awaitable<void> run();
  void stop();

 private:
  boost::asio::awaitable<claim_result> claim();
  // Hands claimed rows to the publisher in id order; the ids of rows it could not hand over
  // (connection lost, stopping) are appended to `left`.
  boost::asio::awaitable<std::size_t> publish_claimed(std::vector<message>& rows,
                                                      std::vector<uuid>& left);
  bool connected() const { return client_->state() == amqp::client_state::connected; }

  sweeper_options options_;
  relay_store& store_;
  std::shared_ptr<amqp::client> client_;
  queue_modes& modes_;
  schema_latch& schema_;
  topology_declarer& declarer_;
  publish_handoff& handoff_;
  relay_metrics& metrics_;
  bool stopping_ = false;
  async_event kick_;  // reconnected, or stopping
  log_limiter claim_log_;
};

}  // namespace sluice::relay
