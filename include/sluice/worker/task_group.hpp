#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "sluice/core/async_event.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>

namespace sluice::worker {

// Owns coroutines that must not outlive their owner: every one spawned here is counted until it
// returns, and cancel_all() emits a terminal cancellation to each (its pending I/O ends with
// operation_aborted, or the next co_await throws), so stop() can end requests in flight and wait
// for exactly them. An exception ends only its own coroutine; operation_aborted is not logged.
// Loop-thread only.
class task_group {
 public:
  using clock = std::chrono::steady_clock;

  explicit task_group(boost::asio::any_io_executor executor, const char* name);
  ~task_group();
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  // `keep_alive` is held until the coroutine returned: whatever it refers to must live that long.
  void spawn(boost::asio::awaitable<void> task, std::shared_ptr<void> keep_alive = {});
  void cancel_all();

  std::size_t running() const;
  // Until every coroutine returned; false when the deadline came first.
  boost::asio::awaitable<bool> wait(clock::time_point deadline);

 private:
  struct state;

  boost::asio::any_io_executor executor_;
  // Shared with the completion handlers, so a coroutine ending after the group is gone finds
  // its bookkeeping still there.
  std::shared_ptr<state> state_;
};

}  // namespace sluice::worker
