#include "sluice/relay/loop_group.hpp"

#include <memory>
#include <optional>
#include <stdexcept>

#include "sluice/core/async_event.hpp"

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
using clock = loop_group::clock;

// Runs until told to stop, as the relay's loops do.
struct stoppable {
  bool stopping = false;
  bool ended = false;
  async_event event;
  asio::awaitable<void> run() {
    while (!stopping)
      co_await event.wait_until(clock::time_point::max());
    ended = true;
  }
  void stop() {
    stopping = true;
    event.notify_all();
  }
};

asio::awaitable<void> sleep_for(clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<void> throws() {
  co_await sleep_for(1ms);
  throw std::runtime_error("boom");
}

TEST(relay_loop_group, counts_loops_by_name_until_they_return) {
  asio::io_context io;
  loop_group g(io.get_executor());
  stoppable a, b;
  g.spawn("a", a.run(), nullptr);
  g.spawn("b", b.run(), nullptr);
  io.poll();
  EXPECT_EQ(g.running(), 2u);
  EXPECT_EQ(g.running("a"), 1u);
  EXPECT_EQ(g.running("c"), 0u);
  a.stop();
  io.poll();
  EXPECT_TRUE(a.ended);
  EXPECT_EQ(g.running("a"), 0u);
  EXPECT_EQ(g.running(), 1u);
  b.stop();
  io.poll();
  EXPECT_EQ(g.running(), 0u);
}

TEST(relay_loop_group, wait_for_one_name_returns_when_that_loop_ended) {
  asio::io_context io;
  loop_group g(io.get_executor());
  stoppable a, b;
  g.spawn("a", a.run(), nullptr);
  g.spawn("b", b.run(), nullptr);
  bool waited = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        a.stop();
        waited = co_await g.wait(clock::now() + 5s, "a");
        EXPECT_EQ(g.running("b"), 1u);
        b.stop();
        EXPECT_TRUE(co_await g.wait(clock::now() + 5s));
      },
      asio::detached);
  io.run_for(2s);
  EXPECT_TRUE(waited);
  EXPECT_EQ(g.running(), 0u);
}

TEST(relay_loop_group, wait_gives_up_at_the_deadline) {
  asio::io_context io;
  loop_group g(io.get_executor());
  stoppable a;
  g.spawn("a", a.run(), nullptr);
  std::optional<bool> waited;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const auto start = clock::now();
        waited = co_await g.wait(start + 30ms);
        EXPECT_GE(clock::now() - start, 30ms);
        a.stop();
      },
      asio::detached);
  io.run_for(2s);
  ASSERT_TRUE(waited.has_value());
  EXPECT_FALSE(*waited);
  EXPECT_EQ(g.running(), 0u);
}

TEST(relay_loop_group, an_exception_ends_only_its_loop) {
  asio::io_context io;
  loop_group g(io.get_executor());
  stoppable a;
  g.spawn("a", a.run(), nullptr);
  g.spawn("bad", throws(), nullptr);
  io.run_for(100ms);
  EXPECT_EQ(g.running("bad"), 0u);
  EXPECT_EQ(g.running("a"), 1u);
  a.stop();
  io.poll();
  EXPECT_EQ(g.running(), 0u);
}

TEST(relay_loop_group, keeps_its_keep_alive_until_the_loop_returned) {
  asio::io_context io;
  loop_group g(io.get_executor());
  auto a = std::make_shared<stoppable>();
  const std::weak_ptr<stoppable> weak = a;
  g.spawn("a", a->run(), a);
  a.reset();
  io.poll();
  ASSERT_FALSE(weak.expired());
  weak.lock()->stop();
  io.poll();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace sluice::relay
