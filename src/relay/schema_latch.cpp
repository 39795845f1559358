#include "sluice/relay/schema_latch.hpp"

#include <chrono>

namespace sluice::relay {
namespace asio = boost::asio;

schema_latch::schema_latch(std::function<bool()> ready)
    : ready_(std::move(ready)), open_(!ready_) {}

asio::awaitable<void> schema_latch::wait() {
  while (!open_ && !stopping_)
    co_await changed_.wait_until(async_event::clock::time_point::max());
}

asio::awaitable<void> schema_latch::run() {
  while (!open_ && !stopping_) {
    if (ready_()) {
      open_ = true;
      changed_.notify_all();
      break;
    }
    co_await changed_.wait_until(async_event::clock::now() + std::chrono::milliseconds(200));
  }
}

void schema_latch::stop() {
  stopping_ = true;
  changed_.notify_all();
}

}  // namespace sluice::relay
