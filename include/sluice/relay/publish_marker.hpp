#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "sluice/core/async_event.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/relay/relay_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

struct marker_options {
  marker_options() = default;

  // A confirmed id waits at most this long before its UPDATE starts...
  std::chrono::milliseconds interval{50};
  // ...or less, once this many are waiting.
  std::size_t batch = 1000;
  // Ids per UPDATE when a backlog built up (PostgreSQL was slow or away).
  std::size_t max_batch = 20000;
  // Confirmed ids kept while PostgreSQL cannot take the marks; beyond it the oldest are
  // forgotten: their rows get published once more by a sweeper (a duplicate, never a loss).
  std::size_t max_pending = 1'000'000;
  std::chrono::milliseconds statement_timeout{5000};
};

// Collects the ids the broker confirmed and deletes their outbox rows in batches: one
// DELETE per interval or per batch, never one per message. One statement at a time, so
// batches grow by themselves when PostgreSQL is the slower side.
class publish_marker {
 public:
  // Told about ids that are done (marked, or forgotten after max_pending).
  using settled_handler = std::function<void(std::span<const uuid>)>;

  publish_marker(boost::asio::any_io_executor executor, relay_store& store,
                 marker_options options = {});
  publish_marker(const publish_marker&) = delete;
  publish_marker& operator=(const publish_marker&) = delete;

  void on_settled(settled_handler handler) { on_settled_ = std::move(handler); }
  void add(const uuid& id);

  // Runs the flush loop until stop(); co_spawn it.
  boost::asio::awaitable<void> run();
  // Flushes what is pending (until `deadline`), then ends run().
  boost::asio::awaitable<void> stop(std::chrono::steady_clock::time_point deadline);

  std::size_t pending() const { return pending_.size() - head_; }
  std::uint64_t marked_total() const { return marked_total_; }
  std::uint64_t dropped_total() const { return dropped_total_; }

 private:
  using clock = std::chrono::steady_clock;

  boost::asio::any_io_executor executor_;
  relay_store& store_;
  marker_options options_;
  settled_handler on_settled_;
  // pending_[head_..] wait for their UPDATE; compacted when the head passes half.
  std::vector<uuid> pending_;
  std::size_t head_ = 0;
  clock::time_point oldest_added_{};
  bool stopping_ = false;
  bool running_ = false;
  clock::time_point stop_deadline_{};
  std::uint64_t marked_total_ = 0;
  std::uint64_t dropped_total_ = 0;
  async_event wake_;
  async_event done_;
};

}  // namespace sluice::relay
