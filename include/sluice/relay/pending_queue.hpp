#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <vector>

#include "sluice/core/message.hpp"

namespace sluice::relay {

// The relay's in-memory FIFO: committed messages waiting for a confirm-window slot, in commit
// order. Bounded by count and by bytes so a long RabbitMQ outage cannot grow memory; what does
// not fit is refused (and left to the sweeper, which reads the rows back from PostgreSQL).
class pending_queue {
 public:
  using clock = std::chrono::steady_clock;

  struct entry {
    message msg;
    clock::time_point enqueued;
  };

  pending_queue(std::size_t max_items, std::size_t max_bytes);

  // All or nothing, so a batch never half-enters and the queue stays in commit order. Returns
  // false, leaving `batch` untouched, when it does not fit.
  bool push(std::vector<message>& batch, clock::time_point now);

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  std::size_t bytes() const { return bytes_; }
  std::size_t max_items() const { return max_items_; }

  entry& front() { return entries_.front(); }
  const entry& front() const { return entries_.front(); }
  entry pop();
  // Removes the entries at the front that were enqueued before `cutoff`; returns how many.
  std::size_t drop_enqueued_before(clock::time_point cutoff);

  // What one message counts against max_bytes: its strings plus bookkeeping.
  static std::size_t cost(const message& m);

 private:
  std::size_t max_items_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::deque<entry> entries_;
};

}  // namespace sluice::relay
