#include "sluice/relay/retry_backoff.hpp"

#include <gtest/gtest.h>

namespace sluice::relay {
namespace {

using namespace std::chrono_literals;
using mode = retry_backoff::mode;

TEST(relay_retry_backoff, first_failure_leaves_ok_with_the_initial_pause) {
  retry_backoff b(100ms, 2000ms);
  EXPECT_EQ(b.current(), mode::ok);
  const auto f = b.on_failure();
  EXPECT_TRUE(f.first);
  EXPECT_EQ(f.pause, 100ms);
  EXPECT_EQ(b.current(), mode::failing);
}

TEST(relay_retry_backoff, further_failures_double_the_pause_up_to_the_cap) {
  retry_backoff b(100ms, 700ms);
  b.on_failure();
  const auto second = b.on_failure();
  EXPECT_FALSE(second.first);
  EXPECT_EQ(second.pause, 200ms);
  EXPECT_EQ(b.on_failure().pause, 400ms);
  EXPECT_EQ(b.on_failure().pause, 700ms);
  EXPECT_EQ(b.on_failure().pause, 700ms);
  EXPECT_EQ(b.current(), mode::failing);
}

TEST(relay_retry_backoff, success_after_failures_recovers_and_resets_the_pause) {
  retry_backoff b(100ms, 2000ms);
  b.on_failure();
  b.on_failure();
  EXPECT_TRUE(b.on_success());
  EXPECT_EQ(b.current(), mode::ok);
  EXPECT_EQ(b.next_pause(), 100ms);
  const auto again = b.on_failure();
  EXPECT_TRUE(again.first);
  EXPECT_EQ(again.pause, 100ms);
}

TEST(relay_retry_backoff, success_while_ok_is_no_recovery) {
  retry_backoff b(100ms, 2000ms);
  EXPECT_FALSE(b.on_success());
  EXPECT_EQ(b.current(), mode::ok);
}

TEST(relay_retry_backoff, a_cap_below_the_initial_pause_is_the_initial_pause) {
  retry_backoff b(500ms, 100ms);
  EXPECT_EQ(b.on_failure().pause, 500ms);
  EXPECT_EQ(b.on_failure().pause, 500ms);
}

}  // namespace
}  // namespace sluice::relay
