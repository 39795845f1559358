#pragma once

#include <chrono>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice {

// A condition-variable for coroutines on one io_context thread: waiters sleep on their own
// timer (armed with their deadline) and notify_all() cancels those timers. Waiters re-check
// their condition after every wake-up. Not thread-safe, by design: everything runs on the loop.
class async_event {
 public:
  using clock = std::chrono::steady_clock;
  enum class wake { notified, timed_out };

  async_event() = default;
  async_event(const async_event&) = delete;
  async_event& operator=(const async_event&) = delete;

  void notify_all();
  boost::asio::awaitable<wake> wait_until(clock::time_point deadline);
  std::size_t waiters() const { return waiters_.size(); }

 private:
  std::vector<boost::asio::steady_timer*> waiters_;
};

}  // namespace sluice
