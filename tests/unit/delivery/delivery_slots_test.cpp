#include "sluice/delivery/delivery_slots.hpp"

#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = delivery_slots::clock;

// Takes a slot and records who got it (and whether), in the order it happened.
asio::awaitable<void> take(delivery_slots& slots, int who, clock::time_point deadline,
                           std::vector<int>& granted, std::vector<int>& refused) {
  // Named first: g++ 12 miscompiles a co_await inside an if condition here (null `this`).
  const bool ok = co_await slots.acquire(deadline);
  if (ok)
    granted.push_back(who);
  else
    refused.push_back(who);
}

struct fixture : ::testing::Test {
  asio::io_context io;
  std::vector<int> granted;
  std::vector<int> refused;
  const clock::time_point far = clock::now() + 60s;

  // Runs what is ready; an io_context that ran out of work stays stopped until restart().
  void drain() {
    io.restart();
    io.poll();
  }
  // Waits for the next handler (a timer), then runs what is ready.
  void wait_one() {
    io.restart();
    io.run_one();
    io.poll();
  }
  void spawn(delivery_slots& slots, int who, clock::time_point deadline) {
    asio::co_spawn(io, take(slots, who, deadline, granted, refused), asio::detached);
    drain();
  }
  void spawn(delivery_slots& slots, int who) { spawn(slots, who, far); }
};

using delivery_slots_test = fixture;

TEST_F(delivery_slots_test, admits_up_to_the_limit_at_once) {
  adaptive_limit limit(3);
  delivery_slots slots(limit);
  for (int i = 0; i < 3; ++i)
    spawn(slots, i);
  EXPECT_EQ(granted, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(slots.in_use(), 3u);
  EXPECT_EQ(slots.waiting(), 0u);
  spawn(slots, 3);
  EXPECT_EQ(granted.size(), 3u);
  EXPECT_EQ(slots.waiting(), 1u);
  slots.release();
  drain();
  EXPECT_EQ(granted, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(slots.in_use(), 3u);
}

TEST_F(delivery_slots_test, waiters_are_woken_first_come_first_served) {
  adaptive_limit limit(1);
  delivery_slots slots(limit);
  spawn(slots, 0);
  for (int i = 1; i <= 4; ++i)
    spawn(slots, i);
  ASSERT_EQ(slots.waiting(), 4u);
  for (int i = 1; i <= 4; ++i) {
    slots.release();
    drain();
    EXPECT_EQ(granted.back(), i);
    EXPECT_EQ(slots.in_use(), 1u);
  }
  EXPECT_EQ(granted, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(refused.empty());
}

TEST_F(delivery_slots_test, a_newcomer_does_not_overtake_a_woken_waiter) {
  adaptive_limit limit(1);
  delivery_slots slots(limit);
  spawn(slots, 0);
  spawn(slots, 1);
  // The slot is handed to 1 inside release(), before 1 resumes: 2 arriving in between waits.
  slots.release();
  asio::co_spawn(io, take(slots, 2, far, granted, refused), asio::detached);
  drain();
  EXPECT_EQ(granted, (std::vector<int>{0, 1}));
  EXPECT_EQ(slots.waiting(), 1u);
}

TEST_F(delivery_slots_test, the_deadline_passes_without_a_slot) {
  adaptive_limit limit(1);
  delivery_slots slots(limit);
  spawn(slots, 0);
  const auto start = clock::now();
  spawn(slots, 1, start + 50ms);
  spawn(slots, 2);
  wait_one();  // 1's timer expires
  EXPECT_GE(clock::now() - start, 50ms);
  EXPECT_EQ(refused, std::vector<int>{1});
  EXPECT_EQ(slots.in_use(), 1u);
  EXPECT_EQ(slots.waiting(), 1u);
  // The refused waiter left the queue: the next slot goes to 2.
  slots.release();
  drain();
  EXPECT_EQ(granted, (std::vector<int>{0, 2}));
}

TEST_F(delivery_slots_test, a_deadline_in_the_past_refuses_only_when_full) {
  adaptive_limit limit(1);
  delivery_slots slots(limit);
  spawn(slots, 0, clock::now() - 1s);
  EXPECT_EQ(granted, std::vector<int>{0});
  spawn(slots, 1, clock::now() - 1s);
  wait_one();
  EXPECT_EQ(refused, std::vector<int>{1});
  EXPECT_EQ(slots.waiting(), 0u);
}

TEST_F(delivery_slots_test, a_shrinking_limit_cancels_nobody_and_admits_below_it) {
  adaptive_limit limit(4, 1'000ms);
  delivery_slots slots(limit);
  for (int i = 0; i < 4; ++i)
    spawn(slots, i);
  limit.on_overload(clock::now());
  ASSERT_EQ(limit.limit(), 2u);
  spawn(slots, 4);
  EXPECT_EQ(slots.in_use(), 4u);  // the four holders keep their slots
  EXPECT_EQ(slots.waiting(), 1u);
  slots.release();  // 3 in use, limit 2
  drain();
  EXPECT_EQ(slots.waiting(), 1u);
  slots.release();  // 2 in use
  drain();
  EXPECT_EQ(slots.waiting(), 1u);
  slots.release();  // 1 in use: room for one
  drain();
  EXPECT_EQ(slots.waiting(), 0u);
  EXPECT_EQ(granted.back(), 4);
  EXPECT_EQ(slots.in_use(), 2u);
}

TEST_F(delivery_slots_test, a_growing_limit_admits_waiters) {
  adaptive_limit limit(3, 1'000ms);
  limit.on_overload(clock::now());
  ASSERT_EQ(limit.limit(), 1u);
  delivery_slots slots(limit);
  spawn(slots, 0);
  spawn(slots, 1);
  spawn(slots, 2);
  ASSERT_EQ(slots.waiting(), 2u);
  limit.on_success();  // 1 -> 2
  ASSERT_EQ(limit.limit(), 2u);
  slots.limit_changed();
  drain();
  EXPECT_EQ(granted, (std::vector<int>{0, 1}));
  EXPECT_EQ(slots.waiting(), 1u);
  // Without limit_changed() the next acquire() or release() notices it too.
  limit.on_success();
  limit.on_success();  // 2 -> 3
  ASSERT_EQ(limit.limit(), 3u);
  spawn(slots, 3);
  EXPECT_EQ(granted, (std::vector<int>{0, 1, 2}));  // 2 first: it waited longer than 3
  EXPECT_EQ(slots.waiting(), 1u);
  EXPECT_EQ(slots.in_use(), 3u);
}

TEST_F(delivery_slots_test, release_without_waiters_frees_the_slot) {
  adaptive_limit limit(2);
  delivery_slots slots(limit);
  spawn(slots, 0);
  slots.release();
  EXPECT_EQ(slots.in_use(), 0u);
  slots.release();  // an extra release does not go below zero
  EXPECT_EQ(slots.in_use(), 0u);
}

asio::awaitable<void> race_with_timer(delivery_slots& slots, clock::time_point deadline,
                                      bool& acquire_won) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, 20ms);
  auto result = co_await (slots.acquire(deadline) || timer.async_wait(asio::use_awaitable));
  acquire_won = result.index() == 0 && std::get<0>(result);
}

TEST_F(delivery_slots_test, a_cancelled_wait_leaves_the_queue_and_holds_nothing) {
  adaptive_limit limit(1);
  delivery_slots slots(limit);
  spawn(slots, 0);
  bool acquire_won = true;
  asio::co_spawn(io, race_with_timer(slots, far, acquire_won), asio::detached);
  drain();
  EXPECT_EQ(slots.waiting(), 1u);
  io.restart();
  io.run();
  EXPECT_FALSE(acquire_won);
  EXPECT_EQ(slots.waiting(), 0u);
  EXPECT_EQ(slots.in_use(), 1u);
  slots.release();
  EXPECT_EQ(slots.in_use(), 0u);
}

TEST_F(delivery_slots_test, a_waiter_destroyed_with_its_loop_leaves_no_trace) {
  adaptive_limit limit(1);
  delivery_slots slots(limit);
  {
    asio::io_context loop;
    asio::co_spawn(loop, take(slots, 0, far, granted, refused), asio::detached);
    asio::co_spawn(loop, take(slots, 1, far, granted, refused), asio::detached);
    loop.poll();  // fresh loop: not stopped yet
    ASSERT_EQ(slots.waiting(), 1u);
  }  // the loop's destructor destroys 1's suspended frame
  EXPECT_EQ(slots.waiting(), 0u);
  EXPECT_EQ(slots.in_use(), 1u);
  slots.release();
  EXPECT_EQ(slots.in_use(), 0u);
}

asio::awaitable<void> race_with(delivery_slots& slots, asio::steady_timer& other,
                                clock::time_point deadline, int& acquire_won) {
  using namespace asio::experimental::awaitable_operators;
  // as_tuple: the cancelled wait must count as finishing (|| ignores a branch that throws).
  auto result =
      co_await (slots.acquire(deadline) || other.async_wait(asio::as_tuple(asio::use_awaitable)));
  acquire_won = result.index() == 0 && std::get<0>(result) ? 1 : 0;
}

TEST_F(delivery_slots_test, a_slot_granted_to_a_losing_branch_goes_to_the_next_waiter) {
  adaptive_limit limit(1);
  delivery_slots slots(limit);
  spawn(slots, 0);
  asio::steady_timer other(io, far);
  int acquire_won = -1;
  asio::co_spawn(io, race_with(slots, other, far, acquire_won), asio::detached);
  drain();
  spawn(slots, 2);
  ASSERT_EQ(slots.waiting(), 2u);
  // In one turn of the loop: the other branch finishes first, then the racing acquire() is
  // handed the slot. The || discards acquire()'s result, so it must give the slot back.
  other.cancel();
  slots.release();
  drain();
  EXPECT_EQ(acquire_won, 0);
  EXPECT_EQ(granted, (std::vector<int>{0, 2}));
  EXPECT_EQ(slots.in_use(), 1u);
  EXPECT_EQ(slots.waiting(), 0u);
}

TEST_F(delivery_slots_test, waiters_outliving_their_slots_wake_without_one) {
  adaptive_limit limit(1);
  {
    delivery_slots slots(limit);
    spawn(slots, 0);
    spawn(slots, 1);
    spawn(slots, 2);
    ASSERT_EQ(slots.waiting(), 2u);
  }
  drain();
  EXPECT_EQ(granted, std::vector<int>{0});
  EXPECT_EQ(refused, (std::vector<int>{1, 2}));
}

TEST_F(delivery_slots_test, slots_destroyed_between_grant_and_resume_touch_nothing) {
  adaptive_limit limit(1);
  {
    delivery_slots slots(limit);
    spawn(slots, 0);
    spawn(slots, 1);
    slots.release();  // 1 is handed the slot but has not resumed yet
  }
  drain();
  // The slot it was handed died with the slots: it is told it has none.
  EXPECT_EQ(granted, std::vector<int>{0});
  EXPECT_EQ(refused, std::vector<int>{1});
}

}  // namespace
}  // namespace sluice::delivery
