#include "sluice/requests/response_json.hpp"

#include "sluice/core/base64.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::requests {
namespace {

using json = nlohmann::json;

TEST(requests_response_json, headers_become_an_object_joined_in_order_set_cookie_an_array) {
  rpc::rpc_reply reply;
  reply.status = 201;
  reply.headers = {{"Content-Type", "application/json"}, {"Vary", "Accept"},    {"vary", "Origin"},
                   {"Set-Cookie", "a=1; Path=/"},        {"set-cookie", "b=2"}, {"X-Empty", ""}};
  reply.body = R"({"ok":true})";
  const json r = json::parse(response_json(reply));
  EXPECT_EQ(r["status"], 201);
  EXPECT_EQ(r["headers"]["content-type"], "application/json");
  EXPECT_EQ(r["headers"]["vary"], "Accept, Origin");
  EXPECT_EQ(r["headers"]["set-cookie"], json::parse(R"(["a=1; Path=/","b=2"])"));
  EXPECT_EQ(r["headers"]["x-empty"], "");
  EXPECT_EQ(r["headers"].size(), 4u);
  EXPECT_EQ(r["body"], R"({"ok":true})");
  EXPECT_EQ(r["bodyEncoding"], "utf8");
}

TEST(requests_response_json, a_single_set_cookie_is_an_array_too) {
  rpc::rpc_reply reply;
  reply.status = 200;
  reply.headers = {{"Set-Cookie", "only=1"}};
  EXPECT_EQ(json::parse(response_json(reply))["headers"]["set-cookie"], json::array({"only=1"}));
}

TEST(requests_response_json, binary_bodies_are_base64_and_bad_header_bytes_replaced) {
  rpc::rpc_reply reply;
  reply.status = 200;
  const std::string bytes("\x89PNG\x00\xff", 6);
  reply.body = bytes;
  reply.headers = {{"X-Latin1", "caf\xe9"}, {"X-Nul", std::string("a\0b", 3)}};
  const std::string text = response_json(reply);
  EXPECT_EQ(text.find("\\u0000"), std::string::npos) << "jsonb refuses \\u0000";
  const json r = json::parse(text);
  EXPECT_EQ(r["bodyEncoding"], "base64");
  EXPECT_EQ(base64_decode(r["body"].get<std::string>()), bytes);
  EXPECT_EQ(r["headers"]["x-latin1"], "caf\xEF\xBF\xBD");
  EXPECT_EQ(r["headers"]["x-nul"],
            "a\xEF\xBF\xBD"
            "b");
}

TEST(requests_response_json, an_empty_body_is_utf8) {
  rpc::rpc_reply reply;
  reply.status = 204;
  const json r = json::parse(response_json(reply));
  EXPECT_EQ(r["body"], "");
  EXPECT_EQ(r["bodyEncoding"], "utf8");
  EXPECT_TRUE(r["headers"].is_object());
}

TEST(requests_response_json, errors_are_code_and_message) {
  rpc::rpc_reply reply;
  reply.status = 502;
  reply.error_code = "upstream_unavailable";
  reply.error_message = "connection refused";
  EXPECT_EQ(json::parse(error_json(reply)),
            json::parse(R"({"code":"upstream_unavailable","message":"connection refused"})"));
}

}  // namespace
}  // namespace sluice::requests
