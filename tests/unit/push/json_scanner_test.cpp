#include "sluice/push/json_scanner.hpp"

#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::push {
namespace {

bool valid(std::string_view text) {
  json_scanner s(text);
  std::string_view span;
  return s.skip_value(span) && s.at_end();
}

TEST(json_scanner, spans_are_the_exact_bytes_of_each_value) {
  const std::string text = R"({"a" : [1, 2.5e3, "x\"y"] , "b":{ "c" : null }})";
  json_scanner s(text);
  ASSERT_TRUE(s.skip_whitespace_and_expect('{'));
  std::string key;
  ASSERT_TRUE(s.read_string(key));
  EXPECT_EQ(key, "a");
  ASSERT_TRUE(s.skip_whitespace_and_expect(':'));
  std::string_view span;
  ASSERT_TRUE(s.skip_value(span));
  EXPECT_EQ(span, R"([1, 2.5e3, "x\"y"])");
  ASSERT_TRUE(s.skip_whitespace_and_expect(','));
  ASSERT_TRUE(s.read_string(key));
  ASSERT_TRUE(s.skip_whitespace_and_expect(':'));
  ASSERT_TRUE(s.skip_value(span));
  EXPECT_EQ(span, R"({ "c" : null })");
}

TEST(json_scanner, accepts_valid_json) {
  for (const char* text :
       {"0", "-0", "1.5", "-12e+3", "1E-2", "true", "false", "null", "\"\"", "[]", "{}", "[[[]]]",
        R"({"k":[1,{"x":"\u00e9\ud83d\ude00"}]})", "\"caf\xc3\xa9\"", " \t\r\n 1 \n"}) {
    EXPECT_TRUE(valid(text)) << text;
  }
}

TEST(json_scanner, rejects_invalid_json) {
  for (const char* text : {"",
                           "01",
                           "1.",
                           ".5",
                           "-",
                           "1e",
                           "+1",
                           "tru",
                           "nul",
                           "[1,]",
                           "{\"a\":1,}",
                           "{a:1}",
                           "[1 2]",
                           "\"open",
                           "\"bad \\x escape\"",
                           "\"\\ud800\"",
                           "\"\\udc00x\"",
                           "\"ctrl \x01\"",
                           "\"\xff\"",
                           "\"\xc0\xaf\"",
                           "\"\xed\xa0\x80\"",
                           "{\"a\"}",
                           "[1]]",
                           "NaN",
                           "Infinity"}) {
    EXPECT_FALSE(valid(text)) << text;
  }
}

TEST(json_scanner, nesting_is_bounded) {
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  json_scanner s(deep, 64);
  std::string_view span;
  EXPECT_FALSE(s.skip_value(span));
  EXPECT_TRUE(s.too_deep());
  EXPECT_NE(s.error().find("nesting deeper than 64 levels"), std::string::npos);
  // Exactly the limit is fine; one more is not.
  const auto nested = [](int levels) {
    return std::string(static_cast<std::size_t>(levels), '[') + "1" +
           std::string(static_cast<std::size_t>(levels), ']');
  };
  const std::string sixty_four = nested(64), sixty_five = nested(65);  // the scanner keeps a view
  json_scanner at_limit(sixty_four, 64);
  EXPECT_TRUE(at_limit.skip_value(span)) << at_limit.error();
  json_scanner over(sixty_five, 64);
  EXPECT_FALSE(over.skip_value(span));
  EXPECT_TRUE(over.too_deep());
  json_scanner broken("[1,", 64);
  EXPECT_FALSE(broken.skip_value(span));
  EXPECT_FALSE(broken.too_deep());
}

TEST(json_scanner, decodes_string_escapes_to_utf8) {
  json_scanner s(R"("a\n\t\/\\\u0041\u00e9\ud83d\ude00")");
  std::string out;
  ASSERT_TRUE(s.read_string(out));
  EXPECT_EQ(out, "a\n\t/\\A\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(json_scanner, agrees_with_nlohmann_on_random_mutations) {
  // Mutating valid documents byte by byte explores the edges of the grammar; both parsers must
  // agree on validity (nlohmann is the reference here).
  const std::string seed =
      R"({"items":[{"queue":"q","payload":{"a":[1,2.5,-3e2,true,null,"s\u00e9"]}}]})";
  std::mt19937 rng(42);
  const std::string alphabet = "{}[]\":,0123456789.eE+-tfnul\\ \x01\xc3\xa9";
  for (int i = 0; i < 20000; ++i) {
    std::string doc = seed;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      doc[rng() % doc.size()] = alphabet[rng() % alphabet.size()];
    }
    const bool reference = nlohmann::json::accept(doc);
    EXPECT_EQ(valid(doc), reference) << doc;
  }
}

}  // namespace
}  // namespace sluice::push
