#include "sluice/http/message.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::http {
namespace {

TEST(message, header_lookup_ignores_case) {
  request r;
  r.headers = {{"Content-Type", "application/json"}, {"X-Request-Id", "a"}};
  EXPECT_EQ(r.header("content-type").value(), "application/json");
  EXPECT_EQ(r.header("X-REQUEST-ID").value(), "a");
  EXPECT_FALSE(r.header("Authorization").has_value());
}

TEST(message, query_parameters_are_decoded) {
  request r;
  r.query = "a=1&name=hello%20world&plus=x+y&flag&bad=%zz";
  EXPECT_EQ(r.query_param("a").value(), "1");
  EXPECT_EQ(r.query_param("name").value(), "hello world");
  EXPECT_EQ(r.query_param("plus").value(), "x y");
  EXPECT_EQ(r.query_param("flag").value(), "");
  EXPECT_EQ(r.query_param("bad").value(), "%zz");
  EXPECT_FALSE(r.query_param("missing").has_value());
}

TEST(message, error_response_has_the_one_error_shape) {
  const auto r = error_response(400, "invalid_json", "unexpected \"}\"");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "application/json");
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "invalid_json");
  EXPECT_EQ(body["error"]["message"], "unexpected \"}\"");
}

TEST(message, error_response_survives_invalid_utf8_in_the_message) {
  const auto r = error_response(400, "bad", std::string("bad byte \xff here"));
  const auto parsed = nlohmann::json::parse(r.body, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << r.body;
}

TEST(message, overloaded_response_carries_retry_after) {
  const auto r = overloaded_response(503, "busy", "try later", 2);
  EXPECT_EQ(r.status, 503);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Retry-After");
  EXPECT_EQ(r.headers[0].second, "2");
}

}  // namespace
}  // namespace sluice::http
