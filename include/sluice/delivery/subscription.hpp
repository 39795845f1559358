#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/routing/route.hpp"

namespace sluice::delivery {

// The retry policy of a subscription: attempt n (1-based) that fails retryably waits a delay
// drawn uniformly from [0, min(max_backoff, initial_backoff * 2^(n-1))] (full jitter) before
// attempt n+1; after max_attempts attempts the message is dead-lettered.
struct retry_policy {
  std::uint32_t max_attempts = 10;
  std::chrono::milliseconds initial_backoff{1'000};
  std::chrono::milliseconds max_backoff{300'000};
};

// Batch delivery: up to max_items messages, or what arrived within max_wait of the first, go
// as one JSON array to `url` (batch_protocol.hpp documents both directions).
struct batch_spec {
  std::uint32_t max_items = 100;
  std::chrono::milliseconds max_wait{100};
  std::string url;
};

enum class ordering {
  none,       // deliveries of a queue run concurrently, retries come back later
  partition,  // one message of a partition at a time, in id order (README: ordering)
};

// An absolute http:// URL split for the HTTP client (the subscription's url or batch url).
struct target_address {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 80;
  std::string target = "/";  // path and query as written, "/" when absent
};

// One subscription: deliveries of sluice queue `queue` to an HTTP endpoint. The fields are the
// API's JSON (subscription_json.hpp), defaults filled in.
struct subscription {
  std::string queue;
  std::string name;  // letters, digits, '-', '_' (no '.', '/' or '~': it is part of AMQP names)
  std::string url;   // "" only with a route: no fallback when no route is active
  target_address address;  // parsed url
  // Resolved through the route registry before each delivery (batch mode: each batch); its
  // active url wins over `url` (batch mode: over batch.url).
  std::optional<routing::route_key> route = std::nullopt;
  std::string method = "POST";
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every delivery
  std::chrono::milliseconds timeout{30'000};
  std::uint32_t concurrency = 32;  // upper bound of in-flight deliveries (and the prefetch)
  retry_policy retry;
  double rate_limit_per_sec = 0;  // 0: unlimited
  std::optional<batch_spec> batch;
  std::optional<target_address> batch_address;  // parsed batch->url
  std::vector<std::string> secrets;             // "whsec_<base64>"; empty: unsigned
  delivery::ordering ordering = ordering::none;

  // Not part of the spec: state kept beside it.
  bool paused = false;
  std::string paused_reason;
  std::int64_t updated_ms = 0;  // Unix ms of the last change (the row's updated_at)

  // Same spec and pause state (a consumer needs no restart when true).
  bool same_as(const subscription& other) const;
};

// The RabbitMQ queue a subscription consumes: in queue mode the queue's own `sluice.<queue>`
// (the relay publishes there; one subscription per queue), in broadcast mode
// `sluice.<queue>~<name>`, bound to the fanout exchange `sluice.<queue>` ('~' never appears in
// queue names, so no queue-mode name can collide with it).
std::string consume_queue(std::string_view queue, std::string_view name, bool broadcast);

}  // namespace sluice::delivery
