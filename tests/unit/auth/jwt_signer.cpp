#include "jwt_signer.hpp"

#include <array>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdexcept>

#include "sluice/auth/base64url.hpp"

namespace sluice::test {

struct jwt_signer::key {
  EVP_PKEY* pkey = nullptr;
  ~key() { EVP_PKEY_free(pkey); }
};

jwt_signer::jwt_signer(kind k, std::string secret)
    : kind_(k), secret_(std::move(secret)), key_(std::make_unique<key>()) {
  if (k == kind::rs256)
    key_->pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  else if (k == kind::es256)
    key_->pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (k != kind::hs256 && key_->pkey == nullptr)
    throw std::runtime_error("key generation failed");
}

jwt_signer::~jwt_signer() = default;

const char* jwt_signer::alg() const {
  switch (kind_) {
    case kind::hs256:
      return "HS256";
    case kind::rs256:
      return "RS256";
    case kind::es256:
      return "ES256";
  }
  return "";
}

std::string jwt_signer::public_key_pem() const {
  if (!key_->pkey)
    return {};
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key_->pkey);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return pem;
}

std::string jwt_signer::signature(const std::string& signed_part) const {
  if (kind_ == kind::hs256) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int size = 0;
    HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac.data(),
         &size);
    return std::string(reinterpret_cast<const char*>(mac.data()), size);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey);
  std::size_t size = 0;
  EVP_DigestSign(ctx, nullptr, &size, reinterpret_cast<const unsigned char*>(signed_part.data()),
                 signed_part.size());
  std::string sig(size, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &size,
                 reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(size);
  if (kind_ == kind::rs256)
    return sig;
  // DER SEQUENCE {r, s} to JWS's raw r||s, 32 bytes each.
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ec = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(ec), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(ec), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(ec);
  return raw;
}

std::string jwt_signer::sign(const nlohmann::json& claims) const {
  return sign(nlohmann::json{{"alg", alg()}, {"typ", "JWT"}}, claims);
}

std::string jwt_signer::sign(const nlohmann::json& header, const nlohmann::json& claims) const {
  const std::string signed_part =
      auth::base64url_encode(header.dump()) + "." + auth::base64url_encode(claims.dump());
  return signed_part + "." + auth::base64url_encode(signature(signed_part));
}

}  // namespace sluice::test
