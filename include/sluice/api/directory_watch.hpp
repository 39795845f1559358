#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

namespace sluice::api {

// Asks, on a thread of its own, every `interval`, whether directories are still there and
// writable, and posts each answer to the loop. The loop reads the last answer and never makes
// the system call itself: on a hung or remote file system access() can block for as long as
// the file system likes. A stuck check shows as an answer that stops getting younger.
class directory_watch {
 public:
  using clock = std::chrono::steady_clock;
  struct answer {
    std::filesystem::path dir;
    bool writable = false;
    std::string error;  // strerror of access(W_OK) when not writable
  };
  struct state {
    std::vector<answer> dirs;  // in the order given
    clock::time_point at;      // when they were checked
  };

  // Checks once on the calling thread (at start-up, like buffer_log::open), then starts the
  // thread. last() is for the loop only.
  directory_watch(boost::asio::any_io_executor executor, std::vector<std::filesystem::path> dirs,
                  std::chrono::milliseconds interval);
  ~directory_watch();  // stop()
  directory_watch(const directory_watch&) = delete;
  directory_watch& operator=(const directory_watch&) = delete;

  // Joins the thread; answers already posted may still land, harmlessly.
  void stop();

  const state& last() const { return *last_; }

  // One check of `dirs`, now. Blocking.
  static state check(const std::vector<std::filesystem::path>& dirs);

 private:
  void run();

  boost::asio::any_io_executor executor_;
  std::vector<std::filesystem::path> dirs_;
  std::chrono::milliseconds interval_;
  // Shared with the answers in flight, so one posted just before the watch is destroyed (and
  // run by a loop that still turns) writes into memory that still exists.
  std::shared_ptr<state> last_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace sluice::api
