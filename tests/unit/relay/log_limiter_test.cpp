#include "sluice/relay/log_limiter.hpp"

#include <gtest/gtest.h>

namespace sluice::relay {
namespace {

using namespace std::chrono_literals;

TEST(relay_log_limiter, allows_once_per_period_and_counts_the_rest) {
  log_limiter l;
  const auto t0 = log_limiter::clock::now();
  EXPECT_TRUE(l.allow(t0, 10s));
  EXPECT_FALSE(l.allow(t0 + 1s, 10s));
  EXPECT_FALSE(l.allow(t0 + 9s, 10s));
  EXPECT_EQ(l.suppressed, 2u);
  EXPECT_TRUE(l.allow(t0 + 10s, 10s));
  EXPECT_FALSE(l.allow(t0 + 11s, 10s));
}

}  // namespace
}  // namespace sluice::relay
