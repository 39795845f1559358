#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/http/caller.hpp"

namespace sluice::auth {

struct jwt_options {
  // HS256 tokens are accepted when set.
  std::string hs256_secret;
  // PEM public key (SubjectPublicKeyInfo): RSA (2048 to 4096 bits) accepts RS256 tokens, EC
  // P-256 accepts ES256 tokens.
  std::string public_key_pem;
  std::string roles_claim = "roles";
  std::string issuer;    // empty: iss not checked
  std::string audience;  // empty: a token with an aud claim is refused (RFC 7519 4.1.3)
  // Clock skew allowed between the issuer and sluice on exp and nbf.
  std::chrono::seconds leeway{30};
};

// Verifies JWS compact tokens (RFC 7515/7519). The algorithm is pinned by the key configured:
// a token whose header names another one, `none` included, is refused before any signature
// is looked at, so an RSA public key is never taken for an HMAC secret.
//
// The caller of a valid token: name = "jwt:" + `sub` ("jwt" without one; a sub holding a
// control character is refused); roles from roles_claim, an
// array of strings or one space-separated string (OAuth's `scope` style), names other than
// read/write/admin ignored; prefixes from the optional `prefixes` claim (array of strings).
class jwt_verifier {
 public:
  // RFC 7518 3.2: an HS256 key at least as long as SHA-256's output.
  static constexpr std::size_t min_hs256_secret_bytes = 32;
  // RSA keys larger than this are refused: verification cost grows with the key.
  static constexpr int max_rsa_bits = 4096;

  // Throws std::invalid_argument when neither a secret nor a key is given, the secret is
  // shorter than min_hs256_secret_bytes, or the key is not a PEM public key of a kind above.
  explicit jwt_verifier(jwt_options options);
  ~jwt_verifier();
  jwt_verifier(const jwt_verifier&) = delete;
  jwt_verifier& operator=(const jwt_verifier&) = delete;

  struct outcome {
    std::shared_ptr<const http::caller> caller;  // set when the token is valid
    std::string error;  // why not, for the 401's message: never the token itself
    // A valid token's exp (without the leeway); nothing when it has none.
    std::optional<std::chrono::system_clock::time_point> expires = std::nullopt;
  };
  outcome verify(std::string_view token, std::chrono::system_clock::time_point now) const;

  // "HS256", "RS256", "ES256" or a combination ("HS256, RS256"): for the start-up log.
  std::string algorithms() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sluice::auth
