#pragma once

// The one blocking thread of a log: replay reads, segment deletion, ack cursor stores and
// failed/ work run here, in the order they were posted, so the loop never waits on the disk.
// Owned by log_core (buffer_log.cpp): the thread starts with this object and stops in join(),
// which log_core::close() calls after the writer has reported its last round. The destructor
// joins too, for a log that was never closed. Tasks capture the core's shared_ptr, so the state
// they touch outlives them.

#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace sluice::buffer::detail {

class blocking_worker {
 public:
  blocking_worker() = default;
  blocking_worker(const blocking_worker&) = delete;
  blocking_worker& operator=(const blocking_worker&) = delete;

  // Thread-safe. Nothing runs a task posted after join(); log_core posts none once closed.
  template <typename Task>
  void post(Task&& task) {
    boost::asio::post(pool_, std::forward<Task>(task));
  }

  // Runs what was posted and joins the thread.
  void join() { pool_.join(); }

 private:
  boost::asio::thread_pool pool_{1};
};

}  // namespace sluice::buffer::detail
