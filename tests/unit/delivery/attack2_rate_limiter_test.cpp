// A reservation given up (the delivery is parked instead of waiting for its token) gives the
// token back: those behind it do not wait for a request that never goes out.
#include "sluice/delivery/adaptive_limit.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

using namespace std::chrono_literals;

TEST(attack2_rate_limiter, a_given_back_reservation_frees_its_token) {
  const auto t0 = rate_limiter::clock::time_point{} + 1h;
  rate_limiter r(1, 1);
  EXPECT_EQ(r.reserve(t0), rate_limiter::clock::duration::zero());
  EXPECT_EQ(r.reserve(t0), std::chrono::seconds(1));
  r.give_back();
  EXPECT_EQ(r.reserve(t0), std::chrono::seconds(1));  // not 2 s: the given-back one is gone
}

TEST(attack2_rate_limiter, giving_back_never_saves_more_than_the_burst) {
  const auto t0 = rate_limiter::clock::time_point{} + 1h;
  rate_limiter r(1, 2);
  r.give_back();
  r.give_back();
  EXPECT_EQ(r.reserve(t0), rate_limiter::clock::duration::zero());
  EXPECT_EQ(r.reserve(t0), rate_limiter::clock::duration::zero());
  EXPECT_EQ(r.reserve(t0), std::chrono::seconds(1));
  rate_limiter unlimited(0, 1);
  unlimited.give_back();
  EXPECT_EQ(unlimited.reserve(t0), rate_limiter::clock::duration::zero());
}

}  // namespace
}  // namespace sluice::delivery
