#include "sluice/store/pg_binary.hpp"

#include <string>

#include "sluice/store/pg_params.hpp"

#include <gtest/gtest.h>

namespace sluice::store {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values)
    out.push_back(static_cast<char>(v));
  return out;
}

TEST(pg_binary, integers_are_big_endian) {
  std::string out;
  pg_binary::put_int32(out, 0x01020304);
  pg_binary::put_int64(out, -2);
  EXPECT_EQ(out, bytes({1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}));
}

TEST(pg_binary, timestamps_count_microseconds_from_2000) {
  EXPECT_EQ(pg_binary::timestamptz_from_unix_ms(946'684'800'000), 0);
  EXPECT_EQ(pg_binary::timestamptz_from_unix_ms(946'684'800'001), 1000);
  EXPECT_EQ(pg_binary::timestamptz_from_unix_ms(0), -946'684'800'000'000);
}

TEST(pg_binary, arrays_have_header_lengths_and_nulls) {
  pg_binary::array_builder a(pg_type::text);
  a.add("ab");
  a.add_null();
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(std::string(a.bytes()), bytes({0,    0,    0,    1,              // one dimension
                                           0,    0,    0,    1,              // has nulls
                                           0,    0,    0,    25,             // text
                                           0,    0,    0,    2,              // two elements
                                           0,    0,    0,    1,              // lower bound 1
                                           0,    0,    0,    2,   'a', 'b',  //
                                           0xff, 0xff, 0xff, 0xff}));
  pg_binary::array_builder empty(pg_type::uuid);
  EXPECT_EQ(std::string(empty.bytes()), bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, 0x86}));
}

TEST(pg_params, keeps_values_in_order_with_formats_and_types) {
  pg_params p;
  p.add_text("42");
  p.add_text_bytes(std::string("a\0b", 3));
  p.add_null(pg_type::text);
  p.add(std::int32_t{7});
  ASSERT_EQ(p.size(), 4u);
  EXPECT_STREQ(p.value(0), "42");
  EXPECT_EQ(p.format(0), 0);
  EXPECT_EQ(std::string(p.value(1), p.length(1)), std::string("a\0b", 3));
  EXPECT_EQ(p.format(1), 1);
  EXPECT_EQ(p.type(1), pg_type::text);
  EXPECT_EQ(p.value(2), nullptr);
  EXPECT_EQ(std::string(p.value(3), p.length(3)), bytes({0, 0, 0, 7}));
  EXPECT_EQ(p.type(3), pg_type::int4);
}

}  // namespace
}  // namespace sluice::store
