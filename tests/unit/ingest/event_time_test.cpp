#include "sluice/ingest/event_time.hpp"

#include <gtest/gtest.h>

namespace sluice::ingest {
namespace {

TEST(event_time, formats_by_name) {
  EXPECT_EQ(parse_time_format("rfc3339"), time_format::rfc3339);
  EXPECT_EQ(parse_time_format("epoch_s"), time_format::epoch_s);
  EXPECT_EQ(parse_time_format("epoch_ms"), time_format::epoch_ms);
  EXPECT_FALSE(parse_time_format("iso"));
  EXPECT_FALSE(parse_time_format(""));
}

TEST(event_time, rfc3339) {
  EXPECT_EQ(parse_event_time_us(time_format::rfc3339, "1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_event_time_us(time_format::rfc3339, "2026-12-02T17:00:00.250Z"),
            1796230800250000);
  EXPECT_EQ(parse_event_time_us(time_format::rfc3339, "2026-12-02T18:00:00.250+01:00"),
            1796230800250000);
  // Below a microsecond is cut off.
  EXPECT_EQ(parse_event_time_us(time_format::rfc3339, "1970-01-01T00:00:00.0000019Z"), 1);
  EXPECT_FALSE(parse_event_time_us(time_format::rfc3339, "2026-12-02"));
  EXPECT_FALSE(parse_event_time_us(time_format::rfc3339, "1796230800"));
  EXPECT_FALSE(parse_event_time_us(time_format::rfc3339, ""));
}

TEST(event_time, epoch_seconds_with_fractions) {
  EXPECT_EQ(parse_event_time_us(time_format::epoch_s, "0"), 0);
  EXPECT_EQ(parse_event_time_us(time_format::epoch_s, "1796230800"), 1796230800000000);
  EXPECT_EQ(parse_event_time_us(time_format::epoch_s, "1796230800.25"), 1796230800250000);
  EXPECT_EQ(parse_event_time_us(time_format::epoch_s, "1.000001"), 1000001);
  EXPECT_EQ(parse_event_time_us(time_format::epoch_s, "1.0000019"), 1000001);
  for (const char* bad : {"", "-1", "1.", ".5", "1e9", "12a", " 1", "+1", "99999999999"}) {
    EXPECT_FALSE(parse_event_time_us(time_format::epoch_s, bad)) << bad;
  }
  // The last second RFC 3339 parsing holds is fine, far beyond is not.
  EXPECT_TRUE(parse_event_time_us(time_format::epoch_s, "9214646399"));
  EXPECT_FALSE(parse_event_time_us(time_format::epoch_s, "9214646400"));
  EXPECT_FALSE(parse_event_time_us(time_format::epoch_s, "99999999999999999999999"));
}

TEST(event_time, epoch_milliseconds) {
  EXPECT_EQ(parse_event_time_us(time_format::epoch_ms, "1796230800250"), 1796230800250000);
  EXPECT_EQ(parse_event_time_us(time_format::epoch_ms, "1.5"), 1500);
  EXPECT_EQ(parse_event_time_us(time_format::epoch_ms, "0.0019"), 1);
  EXPECT_FALSE(parse_event_time_us(time_format::epoch_ms, "x"));
  EXPECT_FALSE(parse_event_time_us(time_format::epoch_ms, "9214646400000"));
}

}  // namespace
}  // namespace sluice::ingest
