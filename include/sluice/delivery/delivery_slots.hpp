#pragma once

#include <chrono>
#include <cstddef>
#include <list>

#include "sluice/delivery/adaptive_limit.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::delivery {

// The in-flight deliveries of one subscription: an awaitable semaphore whose capacity is an
// adaptive_limit's current limit(). acquire() waits, first come first served, until a slot is
// free or its deadline passes. When the limit shrinks nobody is cancelled: holders finish, and
// no one else is admitted until in_use() is below the new limit. Loop-thread only: every call
// comes from coroutines of one io_context thread.
class delivery_slots {
 public:
  using clock = std::chrono::steady_clock;

  // `limit` must outlive this object. Destroying it while acquire()s wait wakes them with false.
  explicit delivery_slots(const adaptive_limit& limit) : limit_(limit) {}
  delivery_slots(const delivery_slots&) = delete;
  delivery_slots& operator=(const delivery_slots&) = delete;
  ~delivery_slots();

  // true with a slot taken (release() it), false when the deadline passed or the wait was
  // cancelled first (then nothing is held).
  boost::asio::awaitable<bool> acquire(clock::time_point deadline);
  // Gives a slot back; the longest waiter gets it when in_use() is below the limit.
  void release();
  // The limit may have grown without a release (the subscription's concurrency was raised):
  // admit the waiters that fit now. acquire() and release() do the same on their own.
  void limit_changed();

  std::size_t in_use() const { return in_use_; }
  std::size_t waiting() const { return waiters_.size(); }

 private:
  struct waiter {
    boost::asio::steady_timer* timer;
    delivery_slots* owner;  // nullptr once the slots are destroyed under a suspended waiter
    bool granted = false;
  };

  bool has_room() const { return in_use_ < limit_.limit(); }
  void grant();

  const adaptive_limit& limit_;
  std::size_t in_use_ = 0;
  std::list<waiter*> waiters_;  // FIFO; each entry lives in its acquire() frame
  std::list<waiter*> granted_;  // handed a slot, not resumed yet (so ~delivery_slots finds them)
};

}  // namespace sluice::delivery
