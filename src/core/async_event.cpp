#include "sluice/core/async_event.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice {

namespace asio = boost::asio;

void async_event::notify_all() {
  for (auto* timer : waiters_) {
    timer->cancel();
  }
}

asio::awaitable<async_event::wake> async_event::wait_until(clock::time_point deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  waiters_.push_back(&timer);
  auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  std::erase(waiters_, &timer);
  co_return ec == asio::error::operation_aborted ? wake::notified : wake::timed_out;
}

}  // namespace sluice
