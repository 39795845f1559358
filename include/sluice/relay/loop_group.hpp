#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/core/async_event.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

// Owns the relay's coroutines: each one it spawns is counted by name until it returns, so
// stop() can wait for exactly the loops it told to end (they end by their own stop(); none is
// left running without an owner). An exception ends only its loop, logged.
class loop_group {
 public:
  using clock = std::chrono::steady_clock;

  explicit loop_group(boost::asio::any_io_executor executor);
  loop_group(const loop_group&) = delete;
  loop_group& operator=(const loop_group&) = delete;

  // `keep_alive` is held until the loop returned: whatever the loop refers to must live that long.
  void spawn(std::string name, boost::asio::awaitable<void> loop, std::shared_ptr<void> keep_alive);

  std::size_t running() const { return running_; }
  std::size_t running(std::string_view name) const;
  // Until every loop (or every loop named `name`) returned; false if the deadline came first.
  boost::asio::awaitable<bool> wait(clock::time_point deadline, std::string_view name = {});

 private:
  void ended(const std::string& name);

  boost::asio::any_io_executor executor_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
  std::size_t running_ = 0;
  async_event ended_;
};

}  // namespace sluice::relay
