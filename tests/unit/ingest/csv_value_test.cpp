#include "sluice/ingest/csv_value.hpp"

#include <gtest/gtest.h>

namespace sluice::ingest {
namespace {

TEST(csv_value, canonical_json_numbers) {
  for (const char* yes : {"0", "-0", "1", "-1", "10", "123456789012345678901234567890", "0.5",
                          "-0.25", "1e5", "1E5", "1e+5", "1e-5", "1.5e10", "0e0"}) {
    EXPECT_TRUE(is_canonical_json_number(yes)) << yes;
  }
  for (const char* no : {"",    "-",   "0001",  "01",   "+1",       ".5",        "1.", "1.e5",
                         "1e",  "1e+", "0x1F",  "NaN",  "Infinity", "-Infinity", " 1", "1 ",
                         "1,5", "--1", "1e5.5", "true", "null",     "1_000"}) {
    EXPECT_FALSE(is_canonical_json_number(no)) << no;
  }
}

std::string value(std::string text, bool quoted) {
  std::string out;
  append_csv_value(out, csv_field{std::move(text), quoted});
  return out;
}

TEST(csv_value, fields_become_json_values) {
  EXPECT_EQ(value("42", false), "42");
  EXPECT_EQ(value("-1.5e3", false), "-1.5e3");
  EXPECT_EQ(value("42", true), "\"42\"");
  EXPECT_EQ(value("", false), "null");
  EXPECT_EQ(value("", true), "\"\"");
  EXPECT_EQ(value("0001", false), "\"0001\"");
  EXPECT_EQ(value("true", false), "\"true\"");
  EXPECT_EQ(value("null", false), "\"null\"");
}

TEST(csv_value, strings_are_escaped) {
  std::string out;
  append_json_string(out, "a\"b\\c\nd\re\tf\x01g\x1f\xc3\xa9");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001f\xc3\xa9\"");
  out.clear();
  append_json_string(out, "");
  EXPECT_EQ(out, "\"\"");
}

}  // namespace
}  // namespace sluice::ingest
