#include "sluice/api/directory_watch.hpp"

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include <boost/asio/post.hpp>

namespace sluice::api {

directory_watch::directory_watch(boost::asio::any_io_executor executor,
                                 std::vector<std::filesystem::path> dirs,
                                 std::chrono::milliseconds interval)
    : executor_(std::move(executor)),
      dirs_(std::move(dirs)),
      interval_(interval),
      last_(std::make_shared<state>(check(dirs_))),
      thread_([this] { run(); }) {}

directory_watch::~directory_watch() {
  stop();
}

void directory_watch::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

directory_watch::state directory_watch::check(const std::vector<std::filesystem::path>& dirs) {
  state s;
  for (const auto& dir : dirs) {
    const int rc = ::access(dir.c_str(), W_OK);
    const int error = errno;
    s.dirs.push_back({dir, rc == 0, rc == 0 ? std::string() : std::strerror(error)});
  }
  s.at = clock::now();
  return s;
}

void directory_watch::run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    boost::asio::post(executor_, [target = last_, answer = check(dirs_)]() mutable {
      *target = std::move(answer);
    });
    lock.lock();
  }
}

}  // namespace sluice::api
