#include "sluice/relay/schema_latch.hpp"

#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace sluice::relay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Runs `task` and sets `ended` once it returned.
void spawn(asio::io_context& io, asio::awaitable<void> task, bool& ended) {
  asio::co_spawn(io, std::move(task), [&ended](const std::exception_ptr&) { ended = true; });
}

TEST(relay_schema_latch, without_a_condition_it_is_open_from_the_start) {
  asio::io_context io;
  schema_latch latch({});
  EXPECT_TRUE(latch.open());
  bool waited = false;
  asio::co_spawn(io, latch.run(), asio::detached);
  spawn(io, latch.wait(), waited);
  io.run_for(1s);
  EXPECT_TRUE(waited);
}

TEST(relay_schema_latch, a_poke_once_the_condition_holds_opens_it_and_wakes_the_waiters) {
  asio::io_context io;
  bool ready = false;
  schema_latch latch([&] { return ready; });
  EXPECT_FALSE(latch.open());
  int woken = 0;
  bool run_ended = false;
  spawn(io, latch.run(), run_ended);
  for (int i = 0; i < 2; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await latch.wait();
          EXPECT_TRUE(latch.open());
          ++woken;
        },
        asio::detached);
  }
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await sleep_for(50ms);
        EXPECT_EQ(woken, 0);
        ready = true;
        co_await sleep_for(50ms);
        EXPECT_EQ(woken, 0) << "nothing polls: only a poke opens the latch";
        latch.poke();
      },
      asio::detached);
  io.run_for(2s);
  EXPECT_TRUE(latch.open());
  EXPECT_EQ(woken, 2);
  EXPECT_TRUE(run_ended);
}

TEST(relay_schema_latch, stop_ends_run_and_releases_waiters_while_closed) {
  asio::io_context io;
  schema_latch latch([] { return false; });
  bool run_ended = false;
  bool waited = false;
  spawn(io, latch.run(), run_ended);
  spawn(io, latch.wait(), waited);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await sleep_for(20ms);
        latch.stop();
      },
      asio::detached);
  const auto start = std::chrono::steady_clock::now();
  io.run_for(2s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(run_ended);
  EXPECT_TRUE(waited);
  EXPECT_FALSE(latch.open());
}

}  // namespace
}  // namespace sluice::relay
