#include "sluice/ingest/csv_parser.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::ingest {
namespace {

using state = csv_parser::state;

// A record written compactly: line, fields (a quoted one prefixed with '"'), error.
struct rec {
  std::size_t line;
  std::vector<std::string> fields;
  std::string error;
  bool operator==(const rec&) const = default;
};

std::ostream& operator<<(std::ostream& os, const rec& r) {
  os << "line " << r.line << " [";
  for (const auto& f : r.fields)
    os << "<" << f << ">";
  return os << "] " << r.error;
}

rec compact(const csv_record& r) {
  rec out{r.line, {}, r.error};
  for (const auto& f : r.fields)
    out.fields.push_back((f.quoted ? "\"" : "") + f.value);
  return out;
}

std::vector<rec> parse(const std::vector<std::string_view>& chunks, std::size_t max = 1024) {
  csv_parser p(max);
  std::vector<rec> out;
  const csv_parser::record_handler on = [&](const csv_record& r) { out.push_back(compact(r)); };
  for (auto c : chunks)
    p.feed(c, on);
  p.finish(on);
  return out;
}

std::vector<rec> parse(std::string_view body, std::size_t max = 1024) {
  return parse(std::vector<std::string_view>{body}, max);
}

// The same records whatever the chunks: split in two at every byte, in three at every pair,
// and byte by byte.
void expect_split_invariant(std::string_view body, const std::vector<rec>& want,
                            std::size_t max = 1024) {
  EXPECT_EQ(parse(body, max), want) << "whole";
  for (std::size_t i = 0; i <= body.size(); ++i) {
    EXPECT_EQ(parse({body.substr(0, i), body.substr(i)}, max), want) << "split at " << i;
    for (std::size_t j = i; j <= body.size(); ++j) {
      ASSERT_EQ(parse({body.substr(0, i), body.substr(i, j - i), body.substr(j)}, max), want)
          << "split at " << i << " and " << j;
    }
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < body.size(); ++i)
    bytes.push_back(body.substr(i, 1));
  EXPECT_EQ(parse(bytes, max), want) << "byte by byte";
}

TEST(csv_parser, plain_records) {
  expect_split_invariant("a,b,c\n1,2,3\n", {{1, {"a", "b", "c"}, ""}, {2, {"1", "2", "3"}, ""}});
}

TEST(csv_parser, last_record_without_line_end) {
  expect_split_invariant("a,b\n1,2", {{1, {"a", "b"}, ""}, {2, {"1", "2"}, ""}});
}

TEST(csv_parser, crlf_and_lone_cr_end_records) {
  expect_split_invariant("a,b\r\n1,2\r3,4\r\n",
                         {{1, {"a", "b"}, ""}, {2, {"1", "2"}, ""}, {3, {"3", "4"}, ""}});
}

TEST(csv_parser, empty_lines_are_no_records_but_count_as_lines) {
  expect_split_invariant("a\n\n\r\n\rb\n", {{1, {"a"}, ""}, {5, {"b"}, ""}});
}

TEST(csv_parser, empty_fields) {
  expect_split_invariant(",a,\n,\n", {{1, {"", "a", ""}, ""}, {2, {"", ""}, ""}});
}

TEST(csv_parser, quoted_fields_hold_commas_quotes_and_line_ends) {
  expect_split_invariant(
      "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"crlf\r\ninside\"\nnext,\"\"\n",
      {{1, {"\"a,b", "\"say \"hi\"", "\"two\nlines", "\"crlf\r\ninside"}, ""},
       {4, {"next", "\""}, ""}});
}

TEST(csv_parser, quoted_field_then_crlf_and_cr) {
  expect_split_invariant("\"a\"\r\n\"b\"\r\"c\"",
                         {{1, {"\"a"}, ""}, {2, {"\"b"}, ""}, {3, {"\"c"}, ""}});
}

TEST(csv_parser, a_quote_inside_an_unquoted_field_is_a_character) {
  expect_split_invariant("ab\"c,d\n", {{1, {"ab\"c", "d"}, ""}});
}

TEST(csv_parser, text_after_a_closing_quote_is_an_error_of_that_record_only) {
  expect_split_invariant(
      "\"ab\"c,d\nok\n",
      {{1, {"\"ab", "d"}, "unexpected character after a closing quote"}, {2, {"ok"}, ""}});
  expect_split_invariant(
      "\"ab\"cd\nok\n",
      {{1, {"\"ab"}, "unexpected character after a closing quote"}, {2, {"ok"}, ""}});
}

TEST(csv_parser, an_unclosed_quote_at_the_end_is_an_error) {
  expect_split_invariant("a\n\"open,\nstill",
                         {{1, {"a"}, ""}, {2, {"\"open,\nstill"}, "a quoted field is not closed"}});
}

TEST(csv_parser, byte_order_mark_is_skipped_at_the_start_only) {
  expect_split_invariant(
      "\xEF\xBB\xBF"
      "id,v\n1,\xEF\xBB\xBF\n",
      {{1, {"id", "v"}, ""}, {2, {"1", "\xEF\xBB\xBF"}, ""}});
}

TEST(csv_parser, a_partial_byte_order_mark_is_content) {
  expect_split_invariant("\xEF\xBBx,y\n", {{1, {"\xEF\xBBx", "y"}, ""}});
  expect_split_invariant("\xEF\xBB", {{1, {"\xEF\xBB"}, ""}});
  expect_split_invariant("\xEF\"q\"", {{1, {"\xEF\"q\""}, ""}});
  expect_split_invariant("\xEF\n", {{1, {"\xEF"}, ""}});
}

TEST(csv_parser, only_a_byte_order_mark_is_no_record) {
  expect_split_invariant("\xEF\xBB\xBF", {});
  expect_split_invariant("", {});
}

TEST(csv_parser, a_record_past_the_bound_is_reported_and_the_next_one_found) {
  // Bound 6 bytes per record, commas and quotes included; the long quoted field holds line
  // ends and a comma, which must not start records of their own. Past the bound nothing more
  // of the record is kept (no later field is opened): only the error counts.
  expect_split_invariant(
      "ab,cd\n\"0123456,\n789\",x\nef\n",
      {{1, {"ab", "cd"}, ""}, {2, {"\"01234"}, "row longer than 6 bytes"}, {4, {"ef"}, ""}}, 6);
}

TEST(csv_parser, a_record_with_too_many_fields_is_reported_without_holding_them) {
  csv_parser p(1 << 20, 4);
  std::vector<rec> out;
  const csv_parser::record_handler on = [&](const csv_record& r) { out.push_back(compact(r)); };
  p.feed("a,b,c,d,e,f,g\nok\n", on);
  p.finish(on);
  // The last field open takes the rest of the record (bounded by max_record_bytes).
  const std::vector<rec> want = {{1, {"a", "b", "c", "defg"}, "more than 4 fields"},
                                 {2, {"ok"}, ""}};
  EXPECT_EQ(out, want);
}

TEST(csv_parser, states_in_order) {
  csv_parser p(100);
  std::vector<rec> out;
  const csv_parser::record_handler on = [&](const csv_record& r) { out.push_back(compact(r)); };
  const std::vector<std::pair<std::string_view, state>> steps = {
      {"\xEF", state::bom},           {"\xBB\xBF", state::record_start},
      {"a", state::unquoted},         {",", state::field_start},
      {"\"", state::quoted},          {"x\"", state::quote_in_quoted},
      {"\"", state::quoted},          {"\"", state::quote_in_quoted},
      {"z", state::after_quoted},     {"z", state::after_quoted},
      {",", state::field_start},      {"\r", state::after_cr},
      {"\n", state::record_start},    {"\r", state::after_cr},
      {"b", state::unquoted},         {"\"", state::unquoted},
      {"\n", state::record_start},    {"\"", state::quoted},
      {"\r", state::quoted},          {"\n", state::quoted},
      {"\"", state::quote_in_quoted}, {"\r", state::after_cr},
      {"c", state::unquoted},
  };
  for (const auto& [bytes, want] : steps) {
    p.feed(bytes, on);
    EXPECT_EQ(p.current_state(), want) << "after '" << bytes << "'";
  }
  p.finish(on);
  const std::vector<rec> want = {
      {1, {"a", "\"x\"", ""}, "unexpected character after a closing quote"},
      {3, {"b\""}, ""},
      {4, {"\"\r\n"}, ""},
      {6, {"c"}, ""}};
  EXPECT_EQ(out, want);
}

TEST(csv_parser, the_record_is_reused_without_stale_fields) {
  expect_split_invariant("a,b,c\nd\n\"e\",f\n",
                         {{1, {"a", "b", "c"}, ""}, {2, {"d"}, ""}, {3, {"\"e", "f"}, ""}});
}

}  // namespace
}  // namespace sluice::ingest
