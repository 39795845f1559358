#include "sluice/core/uuid.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(uuid, round_trips_through_text) {
  uuid_v7_generator gen;
  const uuid id = gen.next(1'700'000'000'123);
  const std::string text = id.to_string();
  ASSERT_EQ(text.size(), 36u);
  EXPECT_EQ(text[14], '7') << "version nibble";
  EXPECT_TRUE(text[19] == '8' || text[19] == '9' || text[19] == 'a' || text[19] == 'b')
      << "variant bits";
  const auto parsed = uuid::parse(text);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, id);
  EXPECT_EQ(id.unix_ms(), 1'700'000'000'123);
}

TEST(uuid, rejects_malformed_text) {
  EXPECT_FALSE(uuid::parse("").has_value());
  EXPECT_FALSE(uuid::parse("0190a0b1-2c3d-7e4f-8a9b-0c1d2e3f4a5").has_value());
  EXPECT_FALSE(uuid::parse("0190a0b1x2c3d-7e4f-8a9b-0c1d2e3f4a5b").has_value());
  EXPECT_FALSE(uuid::parse("0190a0b1-2c3d-7e4f-8a9b-0c1d2e3f4a5g").has_value());
  EXPECT_TRUE(uuid::parse("0190A0B1-2C3D-7E4F-8A9B-0C1D2E3F4A5B").has_value());
}

TEST(uuid, ids_strictly_increase_within_a_millisecond_and_across_clock_steps_back) {
  uuid_v7_generator gen;
  uuid prev = gen.next(1000);
  for (int i = 0; i < 10'000; ++i) {
    const uuid next = gen.next(i < 5000 ? 1000 : 999);  // a burst, then the clock steps back
    ASSERT_LT(prev, next) << "at " << i;
    prev = next;
  }
}

}  // namespace
}  // namespace sluice
