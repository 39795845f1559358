#include "sluice/delivery/webhook_signature.hpp"

#include <array>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sluice/core/base64.hpp"

namespace sluice::delivery {
namespace {

constexpr std::string_view secret_prefix = "whsec_";

std::string hmac_sha256(std::string_view key, std::string_view message) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  // The one-shot HMAC() is not deprecated in OpenSSL 3 and needs no context to free.
  const unsigned char* ok = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                                 reinterpret_cast<const unsigned char*>(message.data()),
                                 message.size(), digest.data(), &length);
  if (ok == nullptr)
    return {};
  return std::string(reinterpret_cast<const char*>(digest.data()), length);
}

}  // namespace

std::optional<std::string> decode_webhook_secret(std::string_view secret) {
  if (secret.substr(0, secret_prefix.size()) != secret_prefix)
    return std::nullopt;
  auto key = base64_decode(secret.substr(secret_prefix.size()));
  if (!key || key->empty())
    return std::nullopt;
  return key;
}

std::string webhook_signature(const std::vector<std::string>& keys, std::string_view id,
                              std::string_view timestamp, std::string_view body) {
  std::string signed_content;
  signed_content.reserve(id.size() + timestamp.size() + body.size() + 2);
  signed_content.append(id).append(".").append(timestamp).append(".").append(body);

  std::string header;
  for (const auto& key : keys) {
    if (!header.empty())
      header += ' ';
    header += "v1,";
    header += base64_encode(hmac_sha256(key, signed_content));
  }
  return header;
}

}  // namespace sluice::delivery
