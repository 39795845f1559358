#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <unordered_set>
#include <vector>

#include "sluice/amqp/publisher.hpp"
#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/relay/log_limiter.hpp"
#include "sluice/relay/publish_marker.hpp"
#include "sluice/relay/queue_mode.hpp"
#include "sluice/relay/relay_metrics.hpp"
#include "sluice/relay/relay_store.hpp"
#include "sluice/relay/topology_declarer.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

// Hands messages to the AMQP publisher and follows each to its outcome: a confirm goes to the
// marker, anything else leaves the row for a sweeper. Owns the set of ids this instance has in
// flight (handed over, not yet marked or given up), which its own sweeper must skip. Shared
// (not owned) by the in-memory publisher and the sweeper; the outcome callbacks, which the
// publisher may run after the relay is gone, reach it only through a weak pointer.
class publish_handoff : public std::enable_shared_from_this<publish_handoff> {
 public:
  // When a message was not accepted it stays unpublished for the sweeper: because the publisher
  // cannot take anything now, or because this message can never be encoded (the other messages
  // are not held up by it).
  enum class result { sent, publisher_unavailable, unencodable };

  static std::shared_ptr<publish_handoff> create(std::shared_ptr<amqp::publisher> publisher,
                                                 topology_declarer& declarer,
                                                 publish_marker& marker, relay_metrics& metrics);
  publish_handoff(const publish_handoff&) = delete;
  publish_handoff& operator=(const publish_handoff&) = delete;

  // Runs after every outcome: a confirm-window slot is free again.
  void on_outcome(std::function<void()> handler) { on_outcome_ = std::move(handler); }

  boost::asio::awaitable<result> send(message m, queue_mode mode);
  // The marker is done with these ids (marked, or forgotten).
  void settled(std::span<const uuid> ids);

  bool window_open() const;
  bool in_flight(const uuid& id) const { return in_flight_.contains(id); }
  std::size_t in_flight_count() const { return in_flight_.size(); }

  // The connection is gone with publishes unconfirmed: they are re-sent after the reconnect,
  // so keep other instances' sweepers off their rows until then (a lease, not forever: if this
  // instance dies meanwhile, the rows are swept once it runs out).
  boost::asio::awaitable<void> hold_unconfirmed(relay_store& store, std::chrono::milliseconds lease,
                                                std::chrono::milliseconds statement_timeout);

 private:
  publish_handoff(std::shared_ptr<amqp::publisher> publisher, topology_declarer& declarer,
                  publish_marker& marker, relay_metrics& metrics);

  void on_result(const uuid& id, const amqp::publish_result& r);

  std::shared_ptr<amqp::publisher> publisher_;
  topology_declarer& declarer_;
  publish_marker& marker_;
  relay_metrics& metrics_;
  std::function<void()> on_outcome_;
  std::unordered_set<uuid, uuid_hash> in_flight_;
  log_limiter nack_log_, return_log_, unencodable_log_;
};

}  // namespace sluice::relay
