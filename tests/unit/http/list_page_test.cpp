#include "sluice/http/list_page.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::http {
namespace {

std::string position_of(const std::variant<std::string, cursor_error>& r) {
  EXPECT_TRUE(std::holds_alternative<std::string>(r)) << to_string(std::get<cursor_error>(r));
  return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : "";
}

cursor_error error_of(const std::variant<std::string, cursor_error>& r) {
  EXPECT_TRUE(std::holds_alternative<cursor_error>(r)) << "decoded: " << std::get<std::string>(r);
  return std::holds_alternative<cursor_error>(r) ? std::get<cursor_error>(r)
                                                 : cursor_error::malformed;
}

TEST(cursor, round_trips_positions_of_any_bytes) {
  for (const std::string& position :
       {std::string(), std::string("payments"), std::string("a"), std::string("ab"),
        std::string("abc"), std::string("\0\xff\x01 binary", 10), std::string(500, 'z'),
        std::string("2026-12-31T00:00:00Z|0190a0b1-2c3d-7e4f-8a9b-0c1d2e3f4a5b")}) {
    const std::string text = encode_cursor(position, "status=pending");
    EXPECT_EQ(
        text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos)
        << text << ": URL-safe, no padding";
    EXPECT_EQ(position_of(decode_cursor(text, "status=pending")), position);
  }
}

TEST(cursor, is_the_same_text_for_the_same_input) {
  EXPECT_EQ(encode_cursor("payments", "f"), encode_cursor("payments", "f"));
  EXPECT_NE(encode_cursor("payments", "f"), encode_cursor("payments", "g"));
  EXPECT_NE(encode_cursor("payments", "f"), encode_cursor("paymentt", "f"));
}

TEST(cursor, reused_with_other_filters_is_refused) {
  const std::string text = encode_cursor("payments", "service=a");
  EXPECT_EQ(error_of(decode_cursor(text, "service=b")), cursor_error::other_filters);
  EXPECT_EQ(error_of(decode_cursor(text, "")), cursor_error::other_filters);
  EXPECT_EQ(error_of(decode_cursor(encode_cursor("x", ""), "service=a")),
            cursor_error::other_filters);
}

TEST(cursor, every_single_character_edit_is_detected) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const std::string text = encode_cursor("payments-42", "f");
  std::size_t edits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    for (const char c : alphabet) {
      if (c == text[i])
        continue;
      std::string edited = text;
      edited[i] = c;
      const auto r = decode_cursor(edited, "f");
      ASSERT_TRUE(std::holds_alternative<cursor_error>(r)) << "edit at " << i << " to " << c;
      const auto e = std::get<cursor_error>(r);
      EXPECT_TRUE(e == cursor_error::tampered || e == cursor_error::malformed) << i;
      ++edits;
    }
  }
  EXPECT_GT(edits, 1000u);
}

TEST(cursor, cut_extended_and_garbage_texts_are_refused) {
  const std::string text = encode_cursor("payments", "f");
  for (std::size_t n = 0; n < text.size(); ++n)
    EXPECT_TRUE(std::holds_alternative<cursor_error>(decode_cursor(text.substr(0, n), "f"))) << n;
  EXPECT_TRUE(std::holds_alternative<cursor_error>(decode_cursor(text + "A", "f")));
  EXPECT_TRUE(std::holds_alternative<cursor_error>(decode_cursor(text + "AA", "f")));
  EXPECT_EQ(error_of(decode_cursor(text + "=", "f")), cursor_error::malformed);
  EXPECT_EQ(error_of(decode_cursor("not a cursor!", "f")), cursor_error::malformed);
  EXPECT_EQ(error_of(decode_cursor("", "f")), cursor_error::malformed);
  EXPECT_EQ(error_of(decode_cursor("AAAA", "f")), cursor_error::malformed);
  EXPECT_EQ(error_of(decode_cursor(std::string(5000, 'A'), "f")), cursor_error::malformed);
  // Standard base64's alphabet is not accepted for '-' and '_'.
  std::string plus = text;
  for (auto& c : plus) {
    if (c == '-')
      c = '+';
    if (c == '_')
      c = '/';
  }
  if (plus != text) {
    EXPECT_EQ(error_of(decode_cursor(plus, "f")), cursor_error::malformed);
  }
}

TEST(cursor, error_responses_are_400_with_the_documented_codes) {
  auto code = [](cursor_error e) {
    const response r = cursor_error_response(e);
    EXPECT_EQ(r.status, 400);
    return nlohmann::json::parse(r.body)["error"]["code"].get<std::string>();
  };
  EXPECT_EQ(code(cursor_error::malformed), "invalid_cursor");
  EXPECT_EQ(code(cursor_error::tampered), "invalid_cursor");
  EXPECT_EQ(code(cursor_error::other_filters), "cursor_filter_mismatch");
}

TEST(parse_limit, takes_the_default_or_1_to_max) {
  auto value = [](std::optional<std::string_view> v) {
    const auto r = parse_limit(v, 50, 1000);
    EXPECT_TRUE(std::holds_alternative<std::size_t>(r)) << (v ? *v : "(none)");
    return std::holds_alternative<std::size_t>(r) ? std::get<std::size_t>(r) : 0;
  };
  EXPECT_EQ(value(std::nullopt), 50u);
  EXPECT_EQ(value(""), 50u);
  EXPECT_EQ(value("1"), 1u);
  EXPECT_EQ(value("1000"), 1000u);
  EXPECT_EQ(value("007"), 7u);
  for (const char* bad :
       {"0", "1001", "-1", "+5", "abc", "10x", " 10", "1.5", "99999999999999999999999"}) {
    const auto r = parse_limit(std::string_view(bad), 50, 1000);
    ASSERT_TRUE(std::holds_alternative<std::string>(r)) << bad;
    EXPECT_NE(std::get<std::string>(r).find("1 to 1000"), std::string::npos) << bad;
  }
}

request with_query(std::string query) {
  request req;
  req.method = "GET";
  req.path = "/api/v1/services";
  req.query = std::move(query);
  req.target = req.path + "?" + req.query;
  return req;
}

TEST(read_page_request, reads_limit_and_cursor_together) {
  auto first = read_page_request(with_query(""), "", 100, 1000);
  ASSERT_TRUE(std::holds_alternative<page_request>(first));
  EXPECT_EQ(std::get<page_request>(first).limit, 100u);
  EXPECT_FALSE(std::get<page_request>(first).position);

  const std::string cursor = encode_cursor("payments", "");
  auto next = read_page_request(with_query("limit=2&cursor=" + cursor), "", 100, 1000);
  ASSERT_TRUE(std::holds_alternative<page_request>(next));
  EXPECT_EQ(std::get<page_request>(next).limit, 2u);
  EXPECT_EQ(std::get<page_request>(next).position, std::optional<std::string>("payments"));

  auto bad_limit = read_page_request(with_query("limit=0"), "", 100, 1000);
  ASSERT_TRUE(std::holds_alternative<response>(bad_limit));
  EXPECT_EQ(std::get<response>(bad_limit).status, 400);
  EXPECT_NE(std::get<response>(bad_limit).body.find("invalid_limit"), std::string::npos);

  auto other = read_page_request(with_query("cursor=" + cursor), "service=x", 100, 1000);
  ASSERT_TRUE(std::holds_alternative<response>(other));
  EXPECT_NE(std::get<response>(other).body.find("cursor_filter_mismatch"), std::string::npos);

  auto edited = read_page_request(with_query("cursor=x" + cursor), "", 100, 1000);
  ASSERT_TRUE(std::holds_alternative<response>(edited));
  EXPECT_NE(std::get<response>(edited).body.find("invalid_cursor"), std::string::npos);
}

TEST(list_body, is_the_one_list_format) {
  const std::string body = list_body({R"({"name":"a"})", R"({"name":"b"})"}, 2, "CUR-sor_1");
  EXPECT_EQ(body, R"({"items":[{"name":"a"},{"name":"b"}],"limit":2,"next":"CUR-sor_1"})");
  EXPECT_EQ(list_body({}, 50, std::nullopt), R"({"items":[],"limit":50,"next":null})");
  const std::string paged = list_body({"1", "2"}, 2, std::nullopt, page_numbers{3, 17});
  EXPECT_EQ(paged, R"({"items":[1,2],"limit":2,"next":null,"page":3,"total":17})");
  EXPECT_TRUE(nlohmann::json::accept(paged));
}

}  // namespace
}  // namespace sluice::http
