#include "sluice/relay/schema_latch.hpp"

namespace sluice::relay {
namespace asio = boost::asio;

schema_latch::schema_latch(std::function<bool()> ready)
    : ready_(std::move(ready)), open_(!ready_) {}

asio::awaitable<void> schema_latch::wait() {
  while (!open_ && !stopping_)
    co_await changed_.wait_until(async_event::clock::time_point::max());
}

void schema_latch::poke() {
  if (!open_ && ready_ && ready_()) {
    open_ = true;
    changed_.notify_all();
  }
}

asio::awaitable<void> schema_latch::run() {
  poke();  // the schema may have been ready before the relay started
  while (!open_ && !stopping_)
    co_await changed_.wait_until(async_event::clock::time_point::max());
}

void schema_latch::stop() {
  stopping_ = true;
  changed_.notify_all();
}

}  // namespace sluice::relay
