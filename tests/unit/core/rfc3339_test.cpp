#include "sluice/core/rfc3339.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using namespace std::chrono;

std::int64_t ms_of(std::string_view text) {
  const auto tp = parse_rfc3339(text);
  EXPECT_TRUE(tp) << text;
  return tp ? duration_cast<milliseconds>(tp->time_since_epoch()).count() : -1;
}

TEST(rfc3339_test, parses_utc_offsets_and_fractions) {
  EXPECT_EQ(ms_of("2026-01-01T00:00:00Z"), 1'767'225'600'000);
  EXPECT_EQ(ms_of("2026-01-01T00:00:00.25Z"), 1'767'225'600'250);
  EXPECT_EQ(ms_of("2026-01-01T01:30:00+01:30"), 1'767'225'600'000);
  EXPECT_EQ(ms_of("2025-12-31t23:00:00-01:00"), 1'767'225'600'000);
}

TEST(rfc3339_test, refuses_what_is_not_one) {
  for (const char* bad : {"", "2026-01-01", "2026-01-01T00:00:00", "2026-02-30T00:00:00Z",
                          "2026-01-01T24:00:00Z", "2026-01-01T00:00:00.Z", "1969-12-31T00:00:00Z",
                          "2026-01-01T00:00:00Zjunk", "1767225600000"})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

TEST(rfc3339_test, formats_ms_with_three_digits_and_round_trips) {
  EXPECT_EQ(format_rfc3339_ms(1'767'225'600'000), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(1'767'225'600'042), "2026-01-01T00:00:00.042Z");
  EXPECT_EQ(ms_of(format_rfc3339_ms(1'767'225'612'345)), 1'767'225'612'345);
  const auto tp = system_clock::time_point(nanoseconds(1'767'225'600'123'456'789));
  EXPECT_EQ(format_rfc3339(tp), "2026-01-01T00:00:00.123456789Z");
  EXPECT_EQ(parse_rfc3339(format_rfc3339(tp)), tp);
}

}  // namespace
}  // namespace sluice
