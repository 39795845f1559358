#include "sluice/auth/jwt_verifier.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdexcept>

#include "sluice/auth/base64url.hpp"
#include "sluice/auth/roles.hpp"

#include <nlohmann/json.hpp>

namespace sluice::auth {
namespace {

using json = nlohmann::json;

struct pkey_free {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct md_ctx_free {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct ecdsa_sig_free {
  void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

jwt_verifier::outcome refused(std::string why) {
  return {nullptr, std::move(why)};
}

// JWS carries an ES256 signature as r || s, 32 bytes each (RFC 7518 section 3.4); OpenSSL
// verifies the DER SEQUENCE of the two integers.
std::optional<std::string> der_of_raw_ecdsa(std::string_view raw) {
  if (raw.size() != 64)
    return std::nullopt;
  std::unique_ptr<ECDSA_SIG, ecdsa_sig_free> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  const int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0)
    return std::nullopt;
  std::string der(static_cast<std::size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != size)
    return std::nullopt;
  return der;
}

bool verify_with_key(EVP_PKEY* key, std::string_view signed_part, std::string_view signature) {
  std::unique_ptr<EVP_MD_CTX, md_ctx_free> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1)
    return false;
  return EVP_DigestVerify(
             ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
}

bool verify_hs256(const std::string& secret, std::string_view signed_part,
                  std::string_view signature) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  // The one-shot HMAC() is not deprecated in OpenSSL 3 and needs no context to free.
  const unsigned char* ok = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                                 reinterpret_cast<const unsigned char*>(signed_part.data()),
                                 signed_part.size(), mac.data(), &size);
  return ok != nullptr && size == 32 && signature.size() == 32 &&
         CRYPTO_memcmp(mac.data(), signature.data(), 32) == 0;
}

// A NumericDate (seconds since the epoch, fractions allowed); nothing for another type.
std::optional<double> numeric_date(const json& v) {
  if (!v.is_number())
    return std::nullopt;
  const double d = v.get<double>();
  if (!std::isfinite(d))
    return std::nullopt;
  return d;
}

}  // namespace

struct jwt_verifier::impl {
  jwt_options options;
  pkey_ptr key;
  const char* key_alg = nullptr;  // "RS256" or "ES256" with a key
};

jwt_verifier::jwt_verifier(jwt_options options) : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
  auto& o = impl_->options;
  if (o.hs256_secret.empty() && o.public_key_pem.empty())
    throw std::invalid_argument("neither an HS256 secret nor a public key");
  // RFC 7518 3.2: a key at least as long as the hash output (256 bits). A shorter secret makes
  // one captured token enough for an offline guess of it.
  if (!o.hs256_secret.empty() && o.hs256_secret.size() < min_hs256_secret_bytes) {
    throw std::invalid_argument("an HS256 secret of " + std::to_string(o.hs256_secret.size()) +
                                " bytes: HS256 needs " + std::to_string(min_hs256_secret_bytes) +
                                " or more (RFC 7518 3.2; e.g. openssl rand -hex 32)");
  }
  if (o.public_key_pem.empty())
    return;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(o.public_key_pem.data(), static_cast<int>(o.public_key_pem.size())),
      &BIO_free);
  pkey_ptr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key)
    throw std::invalid_argument("not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  switch (EVP_PKEY_get_base_id(key.get())) {
    case EVP_PKEY_RSA:
      // More than 4096 bits only makes every verification slower (on the event loop).
      if (EVP_PKEY_get_bits(key.get()) > max_rsa_bits) {
        throw std::invalid_argument("an RSA key of " +
                                    std::to_string(EVP_PKEY_get_bits(key.get())) +
                                    " bits: at most " + std::to_string(max_rsa_bits) + " bits");
      }
      if (EVP_PKEY_get_bits(key.get()) < 2048) {
        throw std::invalid_argument("an RSA key of " +
                                    std::to_string(EVP_PKEY_get_bits(key.get())) +
                                    " bits: RS256 needs 2048 or more");
      }
      impl_->key_alg = "RS256";
      break;
    case EVP_PKEY_EC: {
      std::array<char, 64> group{};
      std::size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.data(),
                                         group.size(), &len) != 1 ||
          std::string_view(group.data(), len) != "prime256v1") {
        throw std::invalid_argument("an EC key on a curve other than P-256: ES256 needs P-256");
      }
      impl_->key_alg = "ES256";
      break;
    }
    default:
      throw std::invalid_argument("a public key that is neither RSA nor EC P-256");
  }
  impl_->key = std::move(key);
}

jwt_verifier::~jwt_verifier() = default;

std::string jwt_verifier::algorithms() const {
  std::string out;
  if (!impl_->options.hs256_secret.empty())
    out = "HS256";
  if (impl_->key_alg) {
    if (!out.empty())
      out += ", ";
    out += impl_->key_alg;
  }
  return out;
}

jwt_verifier::outcome jwt_verifier::verify(std::string_view token,
                                           std::chrono::system_clock::time_point now) const {
  const auto& o = impl_->options;
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return refused("not a JWT (three base64url parts separated by dots)");
  const auto header_text = base64url_decode(token.substr(0, first));
  const auto payload_text = base64url_decode(token.substr(first + 1, second - first - 1));
  const auto signature = base64url_decode(token.substr(second + 1));
  if (!header_text || !payload_text || !signature)
    return refused("JWT part not in base64url");
  const json header = json::parse(*header_text, nullptr, false);
  if (!header.is_object())
    return refused("JWT header is not a JSON object");
  const auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string())
    return refused("JWT header has no alg");
  // RFC 7515 4.1.11: extensions a recipient does not understand must be refused.
  if (header.contains("crit"))
    return refused("JWT header has crit extensions");
  const auto& alg_name = alg->get_ref<const std::string&>();
  const std::string_view signed_part = token.substr(0, second);
  bool valid = false;
  if (alg_name == "HS256" && !o.hs256_secret.empty()) {
    valid = verify_hs256(o.hs256_secret, signed_part, *signature);
  } else if (impl_->key_alg && alg_name == impl_->key_alg) {
    if (alg_name == "ES256") {
      const auto der = der_of_raw_ecdsa(*signature);
      valid = der && verify_with_key(impl_->key.get(), signed_part, *der);
    } else {
      valid = verify_with_key(impl_->key.get(), signed_part, *signature);
    }
  } else {
    return refused("JWT alg " + json(alg_name).dump() + " is not accepted (" + algorithms() + ")");
  }
  if (!valid)
    return refused("JWT signature does not verify");

  const json claims = json::parse(*payload_text, nullptr, false);
  if (!claims.is_object())
    return refused("JWT claims are not a JSON object");
  const double t = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway = static_cast<double>(o.leeway.count());
  std::optional<std::chrono::system_clock::time_point> expires;
  if (const auto exp = claims.find("exp"); exp != claims.end()) {
    const auto at = numeric_date(*exp);
    if (!at)
      return refused("JWT exp is not a number");
    if (t >= *at + leeway)
      return refused("JWT expired");
    // Clamped: a date past what time_point holds is as good as never.
    const double seconds = std::min(*at, 1e11);
    expires = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::duration<double>(seconds)));
  }
  if (const auto nbf = claims.find("nbf"); nbf != claims.end()) {
    const auto at = numeric_date(*nbf);
    if (!at)
      return refused("JWT nbf is not a number");
    if (t + leeway < *at)
      return refused("JWT not valid yet (nbf)");
  }
  if (!o.issuer.empty()) {
    const auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || iss->get_ref<const std::string&>() != o.issuer)
      return refused("JWT iss is not the expected issuer");
  }
  if (o.audience.empty()) {
    // RFC 7519 4.1.3: a recipient that does not identify with a value of a present aud must
    // refuse the token; without AUTH_JWT_AUDIENCE sluice identifies with none, so a token
    // minted for another service of the same issuer is not taken as one for sluice.
    if (claims.contains("aud"))
      return refused("JWT has an aud claim and AUTH_JWT_AUDIENCE is not set");
  } else {
    const auto aud = claims.find("aud");
    bool ours = false;
    if (aud != claims.end() && aud->is_string()) {
      ours = aud->get_ref<const std::string&>() == o.audience;
    } else if (aud != claims.end() && aud->is_array()) {
      for (const auto& a : *aud)
        ours = ours || (a.is_string() && a.get_ref<const std::string&>() == o.audience);
    }
    if (!ours)
      return refused("JWT aud does not name this audience");
  }

  http::caller who;
  // "jwt:<sub>": audit records never confuse a JWT with the static token or a tokens-file
  // entry whose name its issuer happened (or chose) to put in sub.
  who.name = "jwt";
  if (const auto sub = claims.find("sub"); sub != claims.end()) {
    if (!sub->is_string() || sub->get_ref<const std::string&>().empty())
      return refused("JWT sub is not a non-empty string");
    const auto& name = sub->get_ref<const std::string&>();
    // The actor goes into log lines: a control character there would forge them.
    const bool control = std::any_of(name.begin(), name.end(), [](char c) {
      const auto byte = static_cast<unsigned char>(c);
      return byte < 0x20 || byte == 0x7f;
    });
    if (control)
      return refused("JWT sub holds a control character");
    who.name = "jwt:" + name;
  }
  if (const auto roles = claims.find(o.roles_claim); roles != claims.end()) {
    if (roles->is_string()) {
      std::string_view rest = roles->get_ref<const std::string&>();
      while (!rest.empty()) {
        const auto space = rest.find(' ');
        if (const auto role = role_named(rest.substr(0, space)))
          grant(who, *role);
        rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      }
    } else if (roles->is_array()) {
      for (const auto& r : *roles) {
        if (!r.is_string())
          return refused("JWT " + o.roles_claim + " holds a value that is not a string");
        if (const auto role = role_named(r.get_ref<const std::string&>()))
          grant(who, *role);
      }
    } else {
      return refused("JWT " + o.roles_claim +
                     " is neither an array of strings nor a space-separated string");
    }
  }
  if (const auto prefixes = claims.find("prefixes"); prefixes != claims.end()) {
    if (!prefixes->is_array())
      return refused("JWT prefixes is not an array of strings");
    for (const auto& p : *prefixes) {
      if (!p.is_string() || p.get_ref<const std::string&>().empty())
        return refused("JWT prefixes holds a value that is not a non-empty string");
      who.prefixes.push_back(p.get<std::string>());
    }
  }
  return {std::make_shared<const http::caller>(std::move(who)), {}, expires};
}

}  // namespace sluice::auth
