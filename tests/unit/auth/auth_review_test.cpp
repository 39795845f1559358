// Review of the auth merge: what the authenticator and the JWT verifier let through that the
// promise "nothing is pushed, read or changed without a token that allows it" forbids. Each
// test fails on the code as merged (ebf01b7).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "sluice/auth/authenticator.hpp"
#include "sluice/auth/jwt_verifier.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "jwt_signer.hpp"

namespace sluice::auth {
namespace {

using json = nlohmann::json;
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

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::route_options needing(http::access a, std::string resource_param = {}) {
  http::route_options o;
  o.required = a;
  o.resource_param = std::move(resource_param);
  return o;
}

// RFC 7518 3.2: "A key of the same size as the hash output (for instance, 256 bits for
// "HS256") or larger MUST be used with this algorithm." A short secret makes every token
// issued with it a target for an offline guess: one captured token is enough.
TEST(auth_review, hs256_secret_shorter_than_32_bytes_is_refused) {
  for (const std::string& secret :
       std::vector<std::string>{"x", "hs", "hs-secret-for-tests", std::string(31, 'k')}) {
    jwt_options o;
    o.hs256_secret = secret;
    EXPECT_THROW(jwt_verifier{o}, std::invalid_argument)
        << "an HS256 secret of " << secret.size() << " bytes was accepted";
  }
  jwt_options ok;
  ok.hs256_secret = std::string(32, 'k');
  EXPECT_NO_THROW(jwt_verifier{ok});
}

// The audited actor is the caller's name. A JWT whose sub is "AUTH_TOKEN" (or a tokens-file
// name) is recorded exactly as the static token (or that entry) would be: the audit trail
// cannot tell who changed what.
TEST(auth_review, jwt_sub_cannot_pass_for_the_static_token_or_a_tokens_file_name) {
  const std::string secret(32, 's');
  const std::string path = testing::TempDir() + "/auth_review_tokens.json";
  std::ofstream(path)
      << json{{"tokens",
               {{{"name", "ops"}, {"sha256", hex_sha("ops-token")}, {"roles", {"admin"}}}}}}
             .dump();
  config::settings s;
  s.auth_token = "static-token";
  s.auth_tokens_file = path;
  s.auth_jwt_hs256_secret = secret;
  metrics::registry metrics;
  authenticator a(s, metrics);
  jwt_signer hs(jwt_signer::kind::hs256, secret);
  for (const std::string sub : {"AUTH_TOKEN", "ops"}) {
    http::request req;
    req.method = "PUT";
    req.path = "/api/v1/services/x";
    req.headers.emplace_back(
        "Authorization",
        "Bearer " + hs.sign({{"sub", sub}, {"roles", {"admin"}}, {"exp", unix_now() + 60}}));
    ASSERT_FALSE(a.authorize(req, needing(http::access::admin)));
    ASSERT_TRUE(req.caller);
    EXPECT_NE(req.caller->name, sub)
        << "a JWT with sub " << sub << " is audited as the token named " << sub;
  }
}

// RFC 7519 4.1.3: "If the principal processing the claim does not identify itself with a value
// in the "aud" claim when this claim is present, then the JWT MUST be rejected." Without
// AUTH_JWT_AUDIENCE sluice identifies with none, yet takes a token minted for another service
// of the same issuer, whose generic "admin" role then is sluice's admin.
TEST(auth_review, a_jwt_for_another_audience_is_refused_when_no_audience_is_configured) {
  jwt_signer rs(jwt_signer::kind::rs256);
  jwt_options o;
  o.public_key_pem = rs.public_key_pem();
  jwt_verifier v(o);
  const auto other_app = rs.sign(
      {{"sub", "alice"}, {"aud", "billing-ui"}, {"roles", {"admin"}}, {"exp", unix_now() + 60}});
  const auto checked = v.verify(other_app, std::chrono::system_clock::now());
  EXPECT_FALSE(checked.caller) << "a token for audience billing-ui is admin in sluice";
}

// The JWT's sub becomes the audited actor and goes as is into log lines ("... updated through
// the API by <sub>"): a sub with a newline forges log lines, which the server's own access log
// prevents for paths (printable()).
TEST(auth_review, a_jwt_sub_with_control_characters_is_not_taken_as_the_actor) {
  const std::string secret(32, 's');
  jwt_signer hs(jwt_signer::kind::hs256, secret);
  jwt_options o;
  o.hs256_secret = secret;
  jwt_verifier v(o);
  const auto forged = hs.sign({{"sub",
                                "alice\n[2026-12-02 19:00:00.000] [info] services: service "
                                "billing deleted through the API by ops"},
                               {"roles", {"admin"}},
                               {"exp", unix_now() + 60}});
  const auto checked = v.verify(forged, std::chrono::system_clock::now());
  if (checked.caller) {
    EXPECT_EQ(checked.caller->name.find('\n'), std::string::npos)
        << "the actor holds a newline: " << checked.caller->name;
  }
}

// Every request re-verifies its JWT: an ES256 verification is ~100-150 us of the one event-loop
// thread that also serves pushes (RS256 ~50 us), so a JWT-authenticated client is capped near
// 7,000 requests/s and a flood of well-formed tokens with garbage signatures buys an
// unauthenticated sender that much loop time per request. The same valid token, seen again,
// should cost a digest and a lookup (cached until its exp), not a signature check.
TEST(auth_review, a_valid_jwt_seen_again_is_not_verified_again) {
  jwt_signer es(jwt_signer::kind::es256);
  const std::string path = testing::TempDir() + "/auth_review_es256.pem";
  std::ofstream(path) << es.public_key_pem();
  config::settings s;
  s.auth_jwt_public_key_file = path;
  metrics::registry metrics;
  authenticator a(s, metrics);
  const std::string header =
      "Bearer " + es.sign({{"sub", "pusher"}, {"roles", {"write"}}, {"exp", unix_now() + 600}});
  constexpr int n = 5000;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    http::request req;
    req.method = "POST";
    req.path = "/api/v1/push";
    req.headers.emplace_back("Authorization", header);
    ASSERT_FALSE(a.authorize(req, needing(http::access::write)));
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::printf("[measure] %d authorizations of one ES256 token: %lld ms\n", n,
              static_cast<long long>(took.count()));
  EXPECT_LT(took.count(), 100) << "the signature is checked on every request";
}

// The resource check is skipped when the capture does not percent-decode ("a malformed
// capture is the handler's 400"): the request goes on, req.caller set, to a handler that may
// read the raw capture. A capture the server cannot judge must be refused here, not trusted to
// every present and future handler.
TEST(auth_review, a_resource_capture_that_does_not_decode_is_refused_not_waved_through) {
  const std::string path = testing::TempDir() + "/auth_review_tokens2.json";
  std::ofstream(path) << json{{"tokens",
                               {{{"name", "tele-writer"},
                                 {"sha256", hex_sha("tele-token")},
                                 {"roles", {"write"}},
                                 {"prefixes", {"tele-"}}}}}}
                             .dump();
  config::settings s;
  s.auth_tokens_file = path;
  metrics::registry metrics;
  authenticator a(s, metrics);
  for (const std::string raw : {"billing%", "billing%zz", "%zzbilling"}) {
    http::request req;
    req.method = "POST";
    req.path = "/proxy/" + raw + "/x";
    req.params["service"] = raw;
    req.headers.emplace_back("Proxy-Authorization", "Bearer tele-token");
    auto proxy_route = needing(http::access::write, "service");
    proxy_route.proxy_credentials = true;  // the proxy's routes say where the token is
    const auto refused = a.authorize(req, proxy_route);
    ASSERT_TRUE(refused) << raw << " reached the handler with a caller limited to tele-";
    EXPECT_TRUE(refused->status == 400 || refused->status == 403) << refused->status;
  }
}

}  // namespace
}  // namespace sluice::auth
