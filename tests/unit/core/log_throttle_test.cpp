#include "sluice/core/log_throttle.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using namespace std::chrono_literals;

TEST(log_throttle, lets_a_burst_through_then_counts_until_the_next_interval) {
  log_throttle t(1s, 3);
  const auto t0 = log_throttle::clock::time_point{} + 10s;
  EXPECT_EQ(t.admit(t0), 0u);
  EXPECT_EQ(t.admit(t0), 0u);
  EXPECT_EQ(t.admit(t0 + 100ms), 0u);
  EXPECT_FALSE(t.admit(t0 + 200ms));
  EXPECT_FALSE(t.admit(t0 + 999ms));
  // A new interval: the first line carries the count of the two suppressed.
  EXPECT_EQ(t.admit(t0 + 1s), 2u);
  EXPECT_EQ(t.admit(t0 + 1s), 0u);
}

TEST(log_throttle, a_quiet_source_is_never_suppressed) {
  log_throttle t(1s, 1);
  auto now = log_throttle::clock::time_point{} + 10s;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(t.admit(now), 0u) << i;
    now += 1s;
  }
}

}  // namespace
}  // namespace sluice
