#include "sluice/api/postgres_watch.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::api {
namespace asio = boost::asio;

postgres_watch::postgres_watch(asio::any_io_executor executor, store::pg_pool& pool, options o)
    : executor_(executor), pool_(pool), options_(o), timer_(executor) {}

asio::awaitable<void> postgres_watch::ping() {
  const auto ec = co_await pool_.ping(clock::now() + options_.timeout);
  last_.probed = true;
  last_.error = ec;
}

asio::awaitable<void> postgres_watch::start() {
  running_ = true;
  co_await ping();
  asio::co_spawn(executor_, run(), asio::detached);
}

asio::awaitable<void> postgres_watch::run() {
  while (!stopping_) {
    timer_.expires_after(options_.interval);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopping_)
      break;
    co_await ping();
  }
  running_ = false;
  stopped_.notify_all();
}

asio::awaitable<void> postgres_watch::stop() {
  stopping_ = true;
  timer_.cancel();
  while (running_)
    co_await stopped_.wait_until(async_event::clock::time_point::max());
}

}  // namespace sluice::api
