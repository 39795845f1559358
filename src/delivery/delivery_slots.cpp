#include "sluice/delivery/delivery_slots.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::delivery {

namespace asio = boost::asio;

delivery_slots::~delivery_slots() {
  // Waiters still queued must not touch us once we are gone: wake them without a slot (or, when
  // their loop is being torn down too, let their frames die without reaching back here).
  for (auto* w : waiters_) {
    w->owner = nullptr;
    w->timer->cancel();
  }
  for (auto* w : granted_)
    w->owner = nullptr;
}

void delivery_slots::grant() {
  while (!waiters_.empty() && has_room()) {
    waiter* next = waiters_.front();
    // splice keeps the waiter's iterator valid: it now points into granted_.
    granted_.splice(granted_.end(), waiters_, waiters_.begin());
    // The slot is counted now, not when the waiter resumes, so nobody can overtake it.
    next->granted = true;
    ++in_use_;
    next->timer->cancel();
  }
}

void delivery_slots::release() {
  if (in_use_ > 0)
    --in_use_;
  grant();
}

void delivery_slots::limit_changed() {
  grant();
}

asio::awaitable<bool> delivery_slots::acquire(clock::time_point deadline) {
  // Older waiters first, if the limit grew behind our back.
  grant();
  if (waiters_.empty() && has_room()) {
    ++in_use_;
    co_return true;
  }

  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  waiter self{&timer, this};
  waiters_.push_back(&self);
  auto position = std::prev(waiters_.end());

  // If this frame is destroyed while suspended (its io_context shut down), nothing may keep
  // pointing at it; a slot granted but never handed over is given back without waking anyone
  // (the loop is going away).
  struct frame_guard {
    waiter& self;
    std::list<waiter*>::iterator position;
    bool handed_over = false;
    ~frame_guard() {
      if (handed_over || self.owner == nullptr)
        return;
      if (self.granted) {
        self.owner->granted_.erase(position);
        if (self.owner->in_use_ > 0)
          --self.owner->in_use_;
      } else {
        self.owner->waiters_.erase(position);
      }
    }
  } guard{self, position};

  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  guard.handed_over = true;
  if (self.owner == nullptr)
    co_return false;  // `this` is gone

  if (!self.granted) {
    // Deadline passed or cancelled: grant() never saw us leave the queue.
    waiters_.erase(position);
    co_return false;
  }
  granted_.erase(position);
  // Granted and cancelled at once (a losing branch of an awaitable operator ||): the caller
  // will never see the true, so the slot goes back now instead of leaking.
  const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() != asio::cancellation_type::none) {
    release();
    co_return false;
  }
  co_return true;
}

}  // namespace sluice::delivery
