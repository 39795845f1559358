#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace sluice::test {

// Makes JWTs for tests: a fresh RSA-2048 or EC P-256 key pair (OpenSSL), or an HMAC secret.
class jwt_signer {
 public:
  enum class kind { hs256, rs256, es256 };
  // hs256 uses `secret`; rs256/es256 generate a key pair.
  explicit jwt_signer(kind k, std::string secret = {});
  ~jwt_signer();
  jwt_signer(const jwt_signer&) = delete;
  jwt_signer& operator=(const jwt_signer&) = delete;

  // PEM SubjectPublicKeyInfo of the pair (empty for hs256).
  std::string public_key_pem() const;
  // header.payload.signature with {"alg":<this kind's>,"typ":"JWT"} unless `header` is given.
  std::string sign(const nlohmann::json& claims) const;
  std::string sign(const nlohmann::json& header, const nlohmann::json& claims) const;
  // The signature of `signed_part` as JWS carries it (raw r||s for ES256), not encoded.
  std::string signature(const std::string& signed_part) const;
  const char* alg() const;

 private:
  kind kind_;
  std::string secret_;
  struct key;
  std::unique_ptr<key> key_;
};

}  // namespace sluice::test
