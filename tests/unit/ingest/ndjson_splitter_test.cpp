#include "sluice/ingest/ndjson_splitter.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::ingest {
namespace {

struct seen {
  std::size_t number;
  std::string text;
  bool too_long;
  bool operator==(const seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const seen& s) {
  return os << s.number << ":" << (s.too_long ? "<too long>" : s.text);
}

std::vector<seen> split(const std::vector<std::string_view>& chunks, std::size_t max = 1024) {
  ndjson_splitter splitter(max);
  std::vector<seen> out;
  const ndjson_splitter::line_handler on_line = [&](const ndjson_line& l) {
    out.push_back({l.number, std::string(l.text), l.too_long});
  };
  for (auto c : chunks)
    splitter.feed(c, on_line);
  splitter.finish(on_line);
  return out;
}

TEST(ndjson_splitter, lines_of_one_chunk) {
  const std::vector<seen> want = {{1, "{\"a\":1}", false}, {2, "", false}, {3, "[2]", false}};
  EXPECT_EQ(split({"{\"a\":1}\n\n[2]\n"}), want);
}

TEST(ndjson_splitter, crlf_line_ends_and_a_last_line_without_one) {
  const std::vector<seen> want = {{1, "1", false}, {2, "2", false}, {3, "3", false}};
  EXPECT_EQ(split({"1\r\n2\r\n3"}), want);
}

TEST(ndjson_splitter, empty_body_has_no_lines) {
  EXPECT_TRUE(split({}).empty());
  EXPECT_TRUE(split({""}).empty());
}

TEST(ndjson_splitter, every_split_position_gives_the_same_lines) {
  const std::string body = "{\"a\":\"x y\"}\r\n\n[1,2,3]\n\"s\"\r\n42";
  const auto whole = split({body});
  ASSERT_EQ(whole.size(), 5u);
  for (std::size_t i = 0; i <= body.size(); ++i) {
    const std::string_view v(body);
    EXPECT_EQ(split({v.substr(0, i), v.substr(i)}), whole) << "split at " << i;
    for (std::size_t j = i; j <= body.size(); ++j) {
      EXPECT_EQ(split({v.substr(0, i), v.substr(i, j - i), v.substr(j)}), whole)
          << "split at " << i << " and " << j;
    }
  }
}

TEST(ndjson_splitter, byte_by_byte) {
  const std::string body = "a\nbb\r\nccc";
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < body.size(); ++i)
    bytes.push_back(std::string_view(body).substr(i, 1));
  EXPECT_EQ(split(bytes), split({body}));
}

TEST(ndjson_splitter, a_line_past_the_bound_is_reported_without_its_bytes) {
  // Bound 4: "abcd" fits, "abcde" does not; a CR does not count against the bound.
  const std::string body = "abcd\nabcde\nabcd\r\nx\nabcdefghijklmnop";
  const std::vector<seen> want = {
      {1, "abcd", false}, {2, "", true}, {3, "abcd", false}, {4, "x", false}, {5, "", true}};
  for (std::size_t i = 0; i <= body.size(); ++i) {
    const std::string_view v(body);
    EXPECT_EQ(split({v.substr(0, i), v.substr(i)}, 4), want) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < body.size(); ++i)
    bytes.push_back(std::string_view(body).substr(i, 1));
  EXPECT_EQ(split(bytes, 4), want);
}

TEST(ndjson_splitter, counts_lines) {
  ndjson_splitter s(10);
  s.feed("a\nb\n", [](const ndjson_line&) {});
  EXPECT_EQ(s.lines(), 2u);
}

}  // namespace
}  // namespace sluice::ingest
