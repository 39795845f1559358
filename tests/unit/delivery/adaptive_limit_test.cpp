#include "sluice/delivery/adaptive_limit.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

using namespace std::chrono_literals;
using time_point = std::chrono::steady_clock::time_point;

const time_point t0 = time_point{} + 1'000h;

TEST(adaptive_limit, starts_at_the_max) {
  adaptive_limit l(32);
  EXPECT_EQ(l.limit(), 32u);
  EXPECT_EQ(l.max(), 32u);
}

TEST(adaptive_limit, overload_halves_it) {
  adaptive_limit l(32, 1'000ms);
  l.on_overload(t0);
  EXPECT_EQ(l.limit(), 16u);
}

TEST(adaptive_limit, overloads_within_the_cooldown_halve_it_once) {
  adaptive_limit l(32, 1'000ms);
  l.on_overload(t0);
  l.on_overload(t0 + 1ms);
  l.on_overload(t0 + 999ms);
  EXPECT_EQ(l.limit(), 16u);
  l.on_overload(t0 + 1'000ms);
  EXPECT_EQ(l.limit(), 8u);
  l.on_overload(t0 + 1'500ms);  // the cooldown counts from the last decrease
  EXPECT_EQ(l.limit(), 8u);
  l.on_overload(t0 + 2'000ms);
  EXPECT_EQ(l.limit(), 4u);
}

TEST(adaptive_limit, never_below_one) {
  adaptive_limit l(4, 1ms);
  for (int i = 0; i < 10; ++i)
    l.on_overload(t0 + i * 1ms);
  EXPECT_EQ(l.limit(), 1u);
  l.on_success();  // 1 + 1/1: one success of a window of one adds one
  EXPECT_EQ(l.limit(), 2u);
}

TEST(adaptive_limit, a_window_of_successes_adds_one) {
  adaptive_limit l(32, 1'000ms);
  l.on_overload(t0);
  ASSERT_EQ(l.limit(), 16u);
  for (int i = 0; i < 15; ++i)
    l.on_success();
  EXPECT_EQ(l.limit(), 16u);
  l.on_success();
  EXPECT_EQ(l.limit(), 17u);
  for (int i = 0; i < 17; ++i)
    l.on_success();
  EXPECT_EQ(l.limit(), 18u);
}

TEST(adaptive_limit, increase_is_clamped_at_the_max) {
  adaptive_limit l(3);
  for (int i = 0; i < 100; ++i)
    l.on_success();
  EXPECT_EQ(l.limit(), 3u);
  l.on_overload(t0);  // halving from the clamp, not from an inflated value
  EXPECT_EQ(l.limit(), 1u);
}

TEST(adaptive_limit, set_max_clamps_the_limit) {
  adaptive_limit l(32);
  l.set_max(8);
  EXPECT_EQ(l.max(), 8u);
  EXPECT_EQ(l.limit(), 8u);
  l.set_max(64);  // raising the max does not jump the limit: successes grow it
  EXPECT_EQ(l.limit(), 8u);
  for (int i = 0; i < 8; ++i)
    l.on_success();
  EXPECT_EQ(l.limit(), 9u);
  l.set_max(0);
  EXPECT_EQ(l.max(), 1u);
  EXPECT_EQ(l.limit(), 1u);
}

TEST(adaptive_limit, a_max_of_zero_is_one) {
  adaptive_limit l(0);
  EXPECT_EQ(l.max(), 1u);
  EXPECT_EQ(l.limit(), 1u);
}

using std::chrono::milliseconds;

milliseconds ms(rate_limiter::clock::duration d) {
  return std::chrono::duration_cast<milliseconds>(d);
}

TEST(rate_limiter, unlimited_never_waits) {
  rate_limiter r(0, 1);
  for (int i = 0; i < 1'000; ++i)
    EXPECT_EQ(r.reserve(t0), rate_limiter::clock::duration::zero());
  rate_limiter negative(-5, 10);
  EXPECT_EQ(negative.reserve(t0), rate_limiter::clock::duration::zero());
}

TEST(rate_limiter, the_burst_is_free_then_reservations_queue_in_order) {
  rate_limiter r(10, 3);  // one token per 100 ms
  EXPECT_EQ(ms(r.reserve(t0)), 0ms);
  EXPECT_EQ(ms(r.reserve(t0)), 0ms);
  EXPECT_EQ(ms(r.reserve(t0)), 0ms);
  // Each caller waits behind the ones before it, without polling.
  EXPECT_EQ(ms(r.reserve(t0)), 100ms);
  EXPECT_EQ(ms(r.reserve(t0)), 200ms);
  EXPECT_EQ(ms(r.reserve(t0)), 300ms);
  // Time passing pays the debt off: 150 ms later the next one is 150 ms further on.
  EXPECT_EQ(ms(r.reserve(t0 + 150ms)), 250ms);
}

TEST(rate_limiter, refills_at_the_rate_up_to_the_burst) {
  rate_limiter r(10, 2);
  EXPECT_EQ(ms(r.reserve(t0)), 0ms);
  EXPECT_EQ(ms(r.reserve(t0)), 0ms);
  EXPECT_EQ(ms(r.reserve(t0 + 100ms)), 0ms);  // one token came back
  EXPECT_EQ(ms(r.reserve(t0 + 100ms)), 100ms);
  // A long idle period saves up only `burst` tokens.
  const time_point later = t0 + 3'600s;
  EXPECT_EQ(ms(r.reserve(later)), 0ms);
  EXPECT_EQ(ms(r.reserve(later)), 0ms);
  EXPECT_EQ(ms(r.reserve(later)), 100ms);
}

TEST(rate_limiter, steady_rate_of_reservations) {
  rate_limiter r(4, 1);  // 250 ms apart
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(ms(r.reserve(t0)), milliseconds(250 * i)) << i;
}

TEST(rate_limiter, time_going_backwards_refills_nothing) {
  rate_limiter r(10, 1);
  EXPECT_EQ(ms(r.reserve(t0)), 0ms);
  EXPECT_EQ(ms(r.reserve(t0 - 10s)), 100ms);
}

TEST(rate_limiter, a_burst_below_one_still_admits) {
  rate_limiter r(10, 0);
  EXPECT_EQ(ms(r.reserve(t0)), 0ms);
  EXPECT_EQ(ms(r.reserve(t0)), 100ms);
}

TEST(rate_limiter, set_rate) {
  rate_limiter r(0, 1);
  r.reserve(t0);
  r.set_rate(10, 1);  // from unlimited: a full bucket
  EXPECT_EQ(ms(r.reserve(t0)), 0ms);
  EXPECT_EQ(ms(r.reserve(t0)), 100ms);
  r.set_rate(0, 1);  // to unlimited
  EXPECT_EQ(ms(r.reserve(t0)), 0ms);
  rate_limiter s(10, 5);
  s.set_rate(10, 2);  // a smaller burst drops the savings above it
  EXPECT_EQ(ms(s.reserve(t0)), 0ms);
  EXPECT_EQ(ms(s.reserve(t0)), 0ms);
  EXPECT_EQ(ms(s.reserve(t0)), 100ms);
}

}  // namespace
}  // namespace sluice::delivery
