#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "sluice/delivery/subscription.hpp"

#include <nlohmann/json.hpp>

namespace sluice::delivery {

// A validation failure: the JSON field it is about ("retry.maxAttempts", "headers.X-Foo",
// "secrets[1]") and a sentence for the client. The API answers 400
// {"error":{"code":"invalid_subscription","message":…,"field":…}}.
struct subscription_error {
  std::string field;
  std::string message;
};

// Subscription names: letters, digits, '-', '_', 1 to 100 bytes (no '.', '/' or '~': the name
// is part of the AMQP queue sluice.<queue>~<name> and of the NOTIFY payload <queue>/<name>).
bool valid_subscription_name(std::string_view name);

// The body of PUT /api/v1/queues/{queue}/subscriptions/{name} (README, "Delivery:
// subscriptions"). Only "url" is required, or "route" ({"tenant","env","version"} and an
// optional "service", default the subscription's name; names as routing::name_problem, errors
// name e.g. "route.env"), or both (the active route wins, the url is the fallback). Defaults:
// method POST, headers {}, timeoutMs 30000, concurrency `default_concurrency`
// (CONCURRENCY_PER_QUEUE), retry {maxAttempts 10,
// initialBackoffMs 1000, maxBackoffMs 300000}, rateLimitPerSec 0 (unlimited), no batch (when
// given: maxItems 100, maxWaitMs 100, url required), secrets [], ordering "none". "queue" and
// "name" may be given when they equal the path's. Unknown and repeated fields are refused.
// The queue name is not checked here (the route does).
std::variant<subscription, subscription_error> parse_subscription(
    std::string_view queue, std::string_view name, std::string_view json,
    std::uint32_t default_concurrency);

// An absolute http:// URL (a query is allowed, a fragment or user info is not) split for the
// HTTP client; nullopt and the reason in `why`. https:// is refused: not supported yet.
std::optional<target_address> parse_target_url(std::string_view url, std::string* why = nullptr);

// A webhook secret: "whsec_" + base64 of 24 to 64 key bytes. nullopt when valid, else why not.
std::optional<std::string> webhook_secret_problem(std::string_view secret);

// What responses show of a secret: "whsec_…" and its last 4 characters.
std::string masked_secret(std::string_view secret);

// The API's view: the full spec, defaults spelled out, secrets masked, plus "queue", "name",
// "paused", "pausedReason" (null unless paused) and "updatedAt" (RFC 3339 UTC).
nlohmann::ordered_json to_api_json(const subscription& s);
std::string to_json(const subscription& s);

// The stored form (sluice_subscriptions.spec): the spec as a PUT body, secrets in full;
// parse_subscription reads it back.
std::string to_stored_json(const subscription& s);

// Unix milliseconds as RFC 3339 UTC with millisecond precision ("2026-12-02T11:20:22.123Z").
std::string format_utc_ms(std::int64_t unix_ms);

}  // namespace sluice::delivery
