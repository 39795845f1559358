#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::delivery {

// Standard Webhooks (standardwebhooks.com): a secret is "whsec_" followed by the base64 of the
// key bytes. nullopt when it is not (checked when a subscription is stored).
std::optional<std::string> decode_webhook_secret(std::string_view secret);

// The webhook-signature header value: "v1,<base64(HMAC-SHA256(key, id "." timestamp "." body))>"
// for every key, space-separated (several while a secret is being rotated).
std::string webhook_signature(const std::vector<std::string>& keys, std::string_view id,
                              std::string_view timestamp, std::string_view body);

}  // namespace sluice::delivery
