#pragma once

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace sluice::test {

// An io_context on a thread of its own, for what a test runs beside the real binary (targets,
// a stand-in ingress or worker): the test's thread stays free to drive and assert.
class loop_thread {
 public:
  loop_thread() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~loop_thread() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  loop_thread(const loop_thread&) = delete;
  loop_thread& operator=(const loop_thread&) = delete;

  boost::asio::io_context& io() { return io_; }

  // Runs `work` on the loop and waits for its result (rethrowing its exception); a loop that
  // does not finish it within `limit` fails the test instead of hanging it.
  template <typename T>
  T run(boost::asio::awaitable<T> work, std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto f = boost::asio::co_spawn(io_, std::move(work), boost::asio::use_future);
    if (f.wait_for(limit) != std::future_status::ready)
      throw std::runtime_error("the loop did not finish the work in time");
    return f.get();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

}  // namespace sluice::test
