#include "sluice/auth/authenticator.hpp"

#include <fstream>

#include <gtest/gtest.h>

#include "jwt_signer.hpp"

namespace sluice::auth {
namespace {

using test::jwt_signer;

std::string hex_sha(const std::string& token) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : sha256_of(token)) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

http::request request_to(std::string path, std::string header = {}, std::string value = {}) {
  http::request r;
  r.method = "GET";
  r.path = std::move(path);
  if (!header.empty())
    r.headers.emplace_back(std::move(header), std::move(value));
  return r;
}

http::route_options needing(http::access a, std::string resource_param = {}) {
  http::route_options o;
  o.required = a;
  o.resource_param = std::move(resource_param);
  return o;
}

std::string header_of(const http::response& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name)
      return v;
  }
  return {};
}

class authenticator_test : public testing::Test {
 protected:
  void write_tokens(const std::string& body) { std::ofstream(path_) << body; }

  std::string path_ = testing::TempDir() + "/authenticator_test_tokens.json";
  metrics::registry metrics_;
};

TEST_F(authenticator_test, nothing_configured_leaves_everything_open) {
  config::settings s;
  authenticator a(s, metrics_);
  EXPECT_FALSE(a.enabled());
  auto req = request_to("/api/v1/routes");
  EXPECT_FALSE(a.authorize(req, needing(http::access::admin)));
  EXPECT_FALSE(req.caller);
}

TEST_F(authenticator_test, static_token_has_every_role_and_open_routes_need_none) {
  config::settings s;
  s.auth_token = "static-secret";
  authenticator a(s, metrics_);
  ASSERT_TRUE(a.enabled());

  auto open = request_to("/health");
  EXPECT_FALSE(a.authorize(open, needing(http::access::open)));

  auto missing = request_to("/api/v1/push");
  auto refused = a.authorize(missing, needing(http::access::write));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(header_of(*refused, "WWW-Authenticate"), R"(Bearer realm="sluice")");
  EXPECT_NE(refused->body.find("\"unauthorized\""), std::string::npos);

  auto wrong = request_to("/api/v1/push", "Authorization", "Bearer static-secreT");
  refused = a.authorize(wrong, needing(http::access::write));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(header_of(*refused, "WWW-Authenticate"),
            R"(Bearer realm="sluice", error="invalid_token")");
  EXPECT_EQ(refused->body.find("static-secreT"), std::string::npos);

  auto basic = request_to("/api/v1/push", "Authorization", "Basic dXNlcjpwYXNz");
  refused = a.authorize(basic, needing(http::access::write));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);

  auto good = request_to("/api/v1/routes", "authorization", "bearer   static-secret ");
  EXPECT_FALSE(a.authorize(good, needing(http::access::admin)));
  ASSERT_TRUE(good.caller);
  EXPECT_EQ(good.caller->name, "AUTH_TOKEN");
}

TEST_F(authenticator_test, proxy_routes_take_the_token_from_proxy_authorization) {
  config::settings s;
  s.auth_token = "static-secret";
  authenticator a(s, metrics_);
  // The route says so (proxy_credentials), not the path.
  auto proxy_route = needing(http::access::write, "service");
  proxy_route.proxy_credentials = true;
  auto target_token = request_to("/proxy/svc/x", "Authorization", "Bearer static-secret");
  auto refused = a.authorize(target_token, proxy_route);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  auto ours = request_to("/proxy/svc/x", "Proxy-Authorization", "Bearer static-secret");
  ours.params["service"] = "svc";
  EXPECT_FALSE(a.authorize(ours, proxy_route));
  auto elsewhere = request_to("/proxy/svc/x", "Proxy-Authorization", "Bearer static-secret");
  EXPECT_TRUE(a.authorize(elsewhere, needing(http::access::write)));
}

TEST_F(authenticator_test, roles_and_prefixes_of_the_tokens_file_give_403) {
  write_tokens(R"({"tokens":[{"name":"reader","sha256":")" + hex_sha("r") +
               R"(","roles":["read"],"prefixes":["tele-"]}]})");
  config::settings s;
  s.auth_tokens_file = path_;
  authenticator a(s, metrics_);
  auto push = request_to("/api/v1/push", "Authorization", "Bearer r");
  auto refused = a.authorize(push, needing(http::access::write));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  EXPECT_NE(refused->body.find("\"forbidden\""), std::string::npos);
  EXPECT_NE(refused->body.find("lacks the write role"), std::string::npos);

  auto other_queue = request_to("/api/v1/queues/billing", "Authorization", "Bearer r");
  other_queue.params["queue"] = "billing";
  refused = a.authorize(other_queue, needing(http::access::read, "queue"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);

  // Captures are judged decoded, as the handlers read them.
  auto encoded = request_to("/api/v1/queues/tele%2D2", "Authorization", "Bearer r");
  encoded.params["queue"] = "tele%2D2";
  EXPECT_FALSE(a.authorize(encoded, needing(http::access::read, "queue")));
  auto sneaky = request_to("/api/v1/queues/%62illing", "Authorization", "Bearer r");
  sneaky.params["queue"] = "%62illing";
  refused = a.authorize(sneaky, needing(http::access::read, "queue"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);

  auto own_queue = request_to("/api/v1/queues/tele-1", "Authorization", "Bearer r");
  own_queue.params["queue"] = "tele-1";
  EXPECT_FALSE(a.authorize(own_queue, needing(http::access::read, "queue")));
  ASSERT_TRUE(own_queue.caller);
  EXPECT_EQ(own_queue.caller->name, "reader");
}

TEST_F(authenticator_test, reload_keeps_the_old_tokens_when_the_new_file_is_bad) {
  write_tokens(R"({"tokens":[{"name":"one","sha256":")" + hex_sha("t1") +
               R"(","roles":["read"]}]})");
  config::settings s;
  s.auth_tokens_file = path_;
  authenticator a(s, metrics_);
  auto with = [&](const std::string& token) {
    auto req = request_to("/api/v1/queues", "Authorization", "Bearer " + token);
    return !a.authorize(req, needing(http::access::read));
  };
  EXPECT_TRUE(with("t1"));
  write_tokens(R"({"tokens":[{"name":"two","sha256":")" + hex_sha("t2") + R"(","roles":["x"]}]})");
  EXPECT_FALSE(a.reload_tokens_file());
  EXPECT_TRUE(with("t1"));
  EXPECT_FALSE(with("t2"));
  write_tokens(R"({"tokens":[{"name":"two","sha256":")" + hex_sha("t2") +
               R"(","roles":["read"]}]})");
  EXPECT_TRUE(a.reload_tokens_file());
  EXPECT_FALSE(with("t1"));
  EXPECT_TRUE(with("t2"));
}

TEST_F(authenticator_test, a_bad_tokens_file_or_key_file_stops_the_start) {
  write_tokens("{\"tokens\":[{]}");
  config::settings s;
  s.auth_tokens_file = path_;
  EXPECT_THROW(authenticator(s, metrics_), std::runtime_error);
  config::settings k;
  k.auth_jwt_public_key_file = path_;
  EXPECT_THROW(authenticator(k, metrics_), std::runtime_error);
}

TEST_F(authenticator_test, jwt_names_the_caller_by_sub_and_says_why_it_refuses) {
  const std::string secret = "hs-secret-of-32-bytes-for-tests-0";
  jwt_signer signer(jwt_signer::kind::hs256, secret);
  config::settings s;
  s.auth_jwt_hs256_secret = secret;
  authenticator a(s, metrics_);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto good = request_to(
      "/api/v1/push", "Authorization",
      "Bearer " + signer.sign({{"sub", "pusher"}, {"roles", {"write"}}, {"exp", now + 300}}));
  EXPECT_FALSE(a.authorize(good, needing(http::access::write)));
  ASSERT_TRUE(good.caller);
  EXPECT_EQ(good.caller->name, "jwt:pusher");
  auto expired = request_to(
      "/api/v1/push", "Authorization",
      "Bearer " + signer.sign({{"sub", "pusher"}, {"roles", {"write"}}, {"exp", now - 300}}));
  const auto refused = a.authorize(expired, needing(http::access::write));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_NE(refused->body.find("JWT expired"), std::string::npos);
}

}  // namespace
}  // namespace sluice::auth
