#include "sluice/delivery/attempt_verdict.hpp"

#include <string_view>

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

TEST(attempt_verdict, every_2xx_is_delivered) {
  for (int s = 200; s <= 299; ++s)
    EXPECT_EQ(classify(s), verdict::delivered) << s;
}

TEST(attempt_verdict, no_response_408_429_and_5xx_are_retried) {
  EXPECT_EQ(classify(0), verdict::retry);
  EXPECT_EQ(classify(408), verdict::retry);
  EXPECT_EQ(classify(429), verdict::retry);
  for (int s = 500; s <= 599; ++s)
    EXPECT_EQ(classify(s), verdict::retry) << s;
}

TEST(attempt_verdict, gone_is_410_only) {
  EXPECT_EQ(classify(410), verdict::gone);
}

TEST(attempt_verdict, other_statuses_are_dead_lettered) {
  for (int s : {100, 101, 199, 300, 301, 304, 399, 400, 401, 403,
                404, 405, 409, 411, 413, 422, 499, 600, 999, -1})
    EXPECT_EQ(classify(s), verdict::dead_letter) << s;
}

TEST(attempt_verdict, overload_is_429_503_504_and_timeouts) {
  EXPECT_TRUE(is_overload(429, false));
  EXPECT_TRUE(is_overload(503, false));
  EXPECT_TRUE(is_overload(504, false));
  EXPECT_TRUE(is_overload(0, true));
  EXPECT_FALSE(is_overload(0, false));  // connection refused says nothing about load
  EXPECT_FALSE(is_overload(500, false));
  EXPECT_FALSE(is_overload(502, false));
  EXPECT_FALSE(is_overload(408, false));
  EXPECT_FALSE(is_overload(200, false));
}

TEST(attempt_verdict, names) {
  EXPECT_EQ(std::string_view(to_string(verdict::delivered)), "delivered");
  EXPECT_EQ(std::string_view(to_string(verdict::retry)), "retry");
  EXPECT_EQ(std::string_view(to_string(verdict::dead_letter)), "dead_letter");
  EXPECT_EQ(std::string_view(to_string(verdict::gone)), "gone");
}

}  // namespace
}  // namespace sluice::delivery
