#include "sluice/auth/jwt_verifier.hpp"

#include <vector>

#include "sluice/auth/base64url.hpp"

#include <gtest/gtest.h>

#include "jwt_signer.hpp"

namespace sluice::auth {
namespace {

using json = nlohmann::json;
using test::jwt_signer;
using sys_clock = std::chrono::system_clock;

const sys_clock::time_point now = sys_clock::time_point(std::chrono::seconds(1'800'000'000));
constexpr std::int64_t now_s = 1'800'000'000;
// HS256 needs 32 bytes or more (RFC 7518 3.2).
constexpr const char* hs_secret = "hs-secret-of-32-bytes-for-tests-0";

jwt_options options_for(const jwt_signer& s) {
  jwt_options o;
  if (std::string(s.alg()) == "HS256")
    o.hs256_secret = "hs-secret-for-tests-0123456789abcdef";
  else
    o.public_key_pem = s.public_key_pem();
  return o;
}

json claims(json extra = json::object()) {
  json c = {{"sub", "svc-a"}, {"roles", {"read", "write"}}, {"exp", now_s + 60}};
  for (auto& [k, v] : extra.items())
    c[k] = v;
  return c;
}

class each_alg : public testing::TestWithParam<jwt_signer::kind> {
 protected:
  jwt_signer signer{GetParam(), "hs-secret-for-tests-0123456789abcdef"};
  jwt_verifier verifier{options_for(signer)};
};

TEST_P(each_alg, accepts_a_good_signature_and_reads_the_caller) {
  const auto out = verifier.verify(signer.sign(claims({{"prefixes", {"tele-"}}})), now);
  ASSERT_TRUE(out.caller) << out.error;
  EXPECT_EQ(out.caller->name, "jwt:svc-a");
  EXPECT_TRUE(out.caller->may(http::access::read));
  EXPECT_TRUE(out.caller->may(http::access::write));
  EXPECT_FALSE(out.caller->may(http::access::admin));
  EXPECT_TRUE(out.caller->covers("tele-1"));
  EXPECT_FALSE(out.caller->covers("other"));
}

TEST_P(each_alg, refuses_a_bad_signature) {
  std::string token = signer.sign(claims());
  // Another payload under the first token's signature.
  const std::string other = signer.sign(claims({{"roles", {"admin"}}}));
  const auto head = token.substr(0, token.find('.'));
  const auto other_payload =
      other.substr(other.find('.') + 1, other.rfind('.') - other.find('.') - 1);
  const std::string forged = head + "." + other_payload + token.substr(token.rfind('.'));
  auto out = verifier.verify(forged, now);
  EXPECT_FALSE(out.caller);
  EXPECT_EQ(out.error, "JWT signature does not verify");

  // One bit of the signature flipped.
  auto sig = *base64url_decode(token.substr(token.rfind('.') + 1));
  sig[sig.size() / 2] = static_cast<char>(sig[sig.size() / 2] ^ 0x01);
  out = verifier.verify(token.substr(0, token.rfind('.') + 1) + base64url_encode(sig), now);
  EXPECT_FALSE(out.caller);
  EXPECT_EQ(out.error, "JWT signature does not verify");

  // A signature of another key of the same kind.
  jwt_signer stranger(GetParam(), "another-secret");
  out = verifier.verify(stranger.sign(claims()), now);
  EXPECT_FALSE(out.caller);
  EXPECT_EQ(out.error, "JWT signature does not verify");

  // No signature at all.
  out = verifier.verify(token.substr(0, token.rfind('.') + 1), now);
  EXPECT_FALSE(out.caller);
}

TEST_P(each_alg, refuses_alg_none_and_every_other_alg) {
  const std::string unsigned_token = base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
                                     base64url_encode(claims().dump()) + ".";
  auto out = verifier.verify(unsigned_token, now);
  EXPECT_FALSE(out.caller);
  EXPECT_NE(out.error.find("alg \"none\" is not accepted"), std::string::npos) << out.error;
  for (const char* alg : {"HS256", "RS256", "ES256", "HS512", "PS256", "hs256", "NONE"}) {
    if (std::string(alg) == signer.alg())
      continue;
    out = verifier.verify(signer.sign(json{{"alg", alg}}, claims()), now);
    EXPECT_FALSE(out.caller) << alg;
    EXPECT_NE(out.error.find("is not accepted"), std::string::npos) << alg << ": " << out.error;
  }
  out = verifier.verify(signer.sign(json{{"typ", "JWT"}}, claims()), now);
  EXPECT_EQ(out.error, "JWT header has no alg");
  out = verifier.verify(signer.sign(json{{"alg", signer.alg()}, {"crit", {"exp"}}}, claims()), now);
  EXPECT_EQ(out.error, "JWT header has crit extensions");
}

TEST_P(each_alg, honours_exp_and_nbf_with_the_leeway) {
  EXPECT_TRUE(verifier.verify(signer.sign(claims({{"exp", now_s - 29}})), now).caller);
  auto out = verifier.verify(signer.sign(claims({{"exp", now_s - 30}})), now);
  EXPECT_EQ(out.error, "JWT expired");
  out = verifier.verify(signer.sign(claims({{"exp", "tomorrow"}})), now);
  EXPECT_EQ(out.error, "JWT exp is not a number");
  EXPECT_TRUE(verifier.verify(signer.sign(claims({{"nbf", now_s + 30}})), now).caller);
  out = verifier.verify(signer.sign(claims({{"nbf", now_s + 31}})), now);
  EXPECT_EQ(out.error, "JWT not valid yet (nbf)");
  out = verifier.verify(signer.sign(claims({{"nbf", nullptr}})), now);
  EXPECT_EQ(out.error, "JWT nbf is not a number");
  json no_exp = claims();
  no_exp.erase("exp");
  EXPECT_TRUE(verifier.verify(signer.sign(no_exp), now).caller);
  EXPECT_TRUE(verifier.verify(signer.sign(claims({{"exp", now_s + 0.5}})), now).caller);
}

INSTANTIATE_TEST_SUITE_P(algs, each_alg,
                         testing::Values(jwt_signer::kind::hs256, jwt_signer::kind::rs256,
                                         jwt_signer::kind::es256),
                         [](const testing::TestParamInfo<jwt_signer::kind>& p) {
                           jwt_signer s(p.param, "x");
                           return std::string(s.alg());
                         });

TEST(jwt_verifier, a_token_of_the_other_key_kind_is_refused_by_alg) {
  jwt_signer rsa(jwt_signer::kind::rs256);
  jwt_signer ec(jwt_signer::kind::es256);
  jwt_verifier for_rsa(options_for(rsa));
  jwt_verifier for_ec(options_for(ec));
  EXPECT_NE(for_rsa.verify(ec.sign(claims()), now).error.find("\"ES256\" is not accepted (RS256)"),
            std::string::npos);
  EXPECT_NE(for_ec.verify(rsa.sign(claims()), now).error.find("\"RS256\" is not accepted (ES256)"),
            std::string::npos);
}

TEST(jwt_verifier, an_hmac_token_keyed_with_the_public_key_is_refused) {
  // The classic confusion: HS256 "signed" with the RSA public key's PEM as the secret.
  jwt_signer rsa(jwt_signer::kind::rs256);
  jwt_signer confused(jwt_signer::kind::hs256, rsa.public_key_pem());
  jwt_verifier verifier(options_for(rsa));
  const auto out = verifier.verify(confused.sign(claims()), now);
  EXPECT_FALSE(out.caller);
  EXPECT_NE(out.error.find("\"HS256\" is not accepted"), std::string::npos);
}

TEST(jwt_verifier, secret_and_key_together_accept_both_algs) {
  jwt_signer rsa(jwt_signer::kind::rs256);
  jwt_signer hs(jwt_signer::kind::hs256, "s3-secret-for-tests-0123456789abcdef");
  jwt_options o;
  o.public_key_pem = rsa.public_key_pem();
  o.hs256_secret = "s3-secret-for-tests-0123456789abcdef";
  jwt_verifier verifier(o);
  EXPECT_EQ(verifier.algorithms(), "HS256, RS256");
  EXPECT_TRUE(verifier.verify(rsa.sign(claims()), now).caller);
  EXPECT_TRUE(verifier.verify(hs.sign(claims()), now).caller);
}

TEST(jwt_verifier, checks_iss_and_aud_when_configured) {
  jwt_signer hs(jwt_signer::kind::hs256, hs_secret);
  jwt_options o;
  o.hs256_secret = hs_secret;
  o.issuer = "https://idp.example";
  o.audience = "sluice";
  jwt_verifier verifier(o);
  const json good = {{"iss", "https://idp.example"}, {"aud", "sluice"}};
  EXPECT_TRUE(verifier.verify(hs.sign(claims(good)), now).caller);
  EXPECT_TRUE(
      verifier
          .verify(hs.sign(claims({{"iss", "https://idp.example"}, {"aud", {"other", "sluice"}}})),
                  now)
          .caller);
  EXPECT_EQ(
      verifier.verify(hs.sign(claims({{"iss", "https://evil.example"}, {"aud", "sluice"}})), now)
          .error,
      "JWT iss is not the expected issuer");
  EXPECT_EQ(verifier.verify(hs.sign(claims({{"aud", "sluice"}})), now).error,
            "JWT iss is not the expected issuer");
  EXPECT_EQ(
      verifier.verify(hs.sign(claims({{"iss", "https://idp.example"}, {"aud", "other"}})), now)
          .error,
      "JWT aud does not name this audience");
  EXPECT_EQ(verifier.verify(hs.sign(claims({{"iss", "https://idp.example"}})), now).error,
            "JWT aud does not name this audience");
  EXPECT_EQ(verifier.verify(hs.sign(claims({{"iss", "https://idp.example"}, {"aud", {1, 2}}})), now)
                .error,
            "JWT aud does not name this audience");
}

TEST(jwt_verifier, reads_roles_from_the_configured_claim_as_array_or_string) {
  jwt_signer hs(jwt_signer::kind::hs256, hs_secret);
  jwt_options o;
  o.hs256_secret = hs_secret;
  o.roles_claim = "scope";
  jwt_verifier verifier(o);
  auto out = verifier.verify(hs.sign(claims({{"scope", "openid admin  profile"}})), now);
  ASSERT_TRUE(out.caller) << out.error;
  EXPECT_TRUE(out.caller->may(http::access::admin));
  // The default claim name is not read when another is configured.
  out = verifier.verify(hs.sign(claims({{"roles", {"admin"}}})), now);
  ASSERT_TRUE(out.caller);
  EXPECT_FALSE(out.caller->may(http::access::read));
  out = verifier.verify(hs.sign(claims({{"scope", {"read", "unknown"}}})), now);
  ASSERT_TRUE(out.caller);
  EXPECT_TRUE(out.caller->may(http::access::read));
  EXPECT_FALSE(out.caller->may(http::access::write));
  EXPECT_FALSE(verifier.verify(hs.sign(claims({{"scope", {"read", 7}}})), now).caller);
  EXPECT_FALSE(verifier.verify(hs.sign(claims({{"scope", 7}})), now).caller);
  EXPECT_FALSE(verifier.verify(hs.sign(claims({{"prefixes", "a"}})), now).caller);
  EXPECT_FALSE(verifier.verify(hs.sign(claims({{"prefixes", {""}}})), now).caller);
  EXPECT_FALSE(verifier.verify(hs.sign(claims({{"sub", 12}})), now).caller);
  json anonymous = claims();
  anonymous.erase("sub");
  out = verifier.verify(hs.sign(anonymous), now);
  ASSERT_TRUE(out.caller);
  EXPECT_EQ(out.caller->name, "jwt");
}

TEST(jwt_verifier, refuses_malformed_tokens) {
  jwt_signer hs(jwt_signer::kind::hs256, hs_secret);
  jwt_options o;
  o.hs256_secret = hs_secret;
  jwt_verifier verifier(o);
  const auto part = [](const std::string& s) { return base64url_encode(s); };
  const auto signed_with = [&](const std::string& header, const std::string& payload) {
    const std::string sp = part(header) + "." + part(payload);
    return sp + "." + base64url_encode(hs.signature(sp));
  };
  EXPECT_FALSE(verifier.verify("", now).caller);
  EXPECT_FALSE(verifier.verify("abc", now).caller);
  EXPECT_FALSE(verifier.verify("a.b", now).caller);
  EXPECT_FALSE(verifier.verify("a.b.c.d", now).caller);
  const std::string good = hs.sign(claims());
  EXPECT_TRUE(verifier.verify(good, now).caller);
  // Padding, the standard alphabet, a stray character.
  const auto dot = good.find('.');
  EXPECT_EQ(verifier.verify(good.substr(0, dot) + "=" + good.substr(dot), now).error,
            "JWT part not in base64url");
  EXPECT_EQ(verifier.verify("+" + good.substr(1), now).error, "JWT part not in base64url");
  EXPECT_EQ(verifier.verify(good + "!", now).error, "JWT part not in base64url");
  EXPECT_EQ(verifier.verify(signed_with("not json", claims().dump()), now).error,
            "JWT header is not a JSON object");
  EXPECT_EQ(verifier.verify(signed_with("[\"HS256\"]", claims().dump()), now).error,
            "JWT header is not a JSON object");
  EXPECT_EQ(verifier.verify(signed_with(R"({"alg":"HS256"})", "{\"sub\":"), now).error,
            "JWT claims are not a JSON object");
  EXPECT_EQ(verifier.verify(signed_with(R"({"alg":"HS256"})", "[1]"), now).error,
            "JWT claims are not a JSON object");
  EXPECT_EQ(verifier.verify(signed_with(R"({"alg":7})", "{}"), now).error, "JWT header has no alg");
}

TEST(jwt_verifier, refuses_keys_it_cannot_use) {
  EXPECT_THROW(jwt_verifier(jwt_options{}), std::invalid_argument);
  jwt_options o;
  o.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n";
  EXPECT_THROW(jwt_verifier{o}, std::invalid_argument);
}

TEST(jwt_verifier, without_an_audience_configured_a_token_with_aud_is_refused) {
  jwt_signer hs(jwt_signer::kind::hs256, hs_secret);
  jwt_options o;
  o.hs256_secret = hs_secret;
  jwt_verifier verifier(o);
  EXPECT_TRUE(verifier.verify(hs.sign(claims()), now).caller);
  EXPECT_EQ(verifier.verify(hs.sign(claims({{"aud", "sluice"}})), now).error,
            "JWT has an aud claim and AUTH_JWT_AUDIENCE is not set");
}

TEST(jwt_verifier, a_sub_with_a_control_character_is_refused) {
  jwt_signer hs(jwt_signer::kind::hs256, hs_secret);
  jwt_options o;
  o.hs256_secret = hs_secret;
  jwt_verifier verifier(o);
  for (const std::string& sub :
       std::vector<std::string>{"a\nb", "a\rb", std::string("a\0b", 3), "a\x7f"}) {
    EXPECT_EQ(verifier.verify(hs.sign(claims({{"sub", sub}})), now).error,
              "JWT sub holds a control character");
  }
  const auto utf8 = verifier.verify(hs.sign(claims({{"sub", "j\xc3\xb6rg"}})), now);
  ASSERT_TRUE(utf8.caller) << utf8.error;
  EXPECT_EQ(utf8.caller->name, "jwt:j\xc3\xb6rg");
}

}  // namespace
}  // namespace sluice::auth
