#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/routing/route.hpp"

namespace sluice::services {

// One way of running a service (e.g. "std", "green"): where its requests go. An empty url
// means the derived one (target_base_url in service_json.hpp) for a flavour without a route;
// with a route it means "no fallback": no active route answers 502 no_route (README).
struct flavour {
  std::string name;
  std::string url;
  // Resolved through the route registry before each call; key.service is the service's name.
  std::optional<routing::route_key> route = std::nullopt;

  bool operator==(const flavour&) const = default;
};

// Batch mode: up to max_requests requests, or what arrived within max_wait, are sent to `url`
// as one JSON array.
struct batch_settings {
  std::size_t max_requests = 10;
  std::chrono::milliseconds max_wait{50};
  std::string url;

  bool operator==(const batch_settings&) const = default;
};

struct weighted_flavour {
  std::string name;
  std::uint32_t weight = 0;

  bool operator==(const weighted_flavour&) const = default;
};

// A traffic split between flavours, valid until valid_until; past it (or without one) every
// request goes to the default flavour.
struct schedule {
  std::vector<weighted_flavour> flavours;
  std::chrono::system_clock::time_point valid_until;

  bool operator==(const schedule&) const = default;
};

// Where a service's definition came from. A service defined by SERVICES_FILE is read-only
// through the API; the environment's service is the lowest layer (file > api > env).
enum class service_source { env, api, file };
const char* to_string(service_source source);

struct service {
  std::string name;
  std::string namespace_ = "default";
  std::string default_flavour;
  std::vector<flavour> flavours;
  std::chrono::milliseconds timeout{60'000};
  std::uint32_t concurrency = 32;
  std::optional<batch_settings> batch;
  std::optional<schedule> traffic;
  service_source source = service_source::api;

  const flavour* find_flavour(std::string_view flavour_name) const;
  // The headers exchange requests of this service are published to: <namespace>.<service>.
  std::string exchange() const;
  // The queue of one flavour, bound to exchange() with header flavour=<name>.
  std::string queue(std::string_view flavour_name) const;

  // Every field, source included (tests, and telling a re-read of the same content apart from a
  // change).
  bool operator==(const service&) const = default;
};

// What a service gets for the fields it leaves out, and the rule for derived URLs; from the
// settings (TARGET_SVC_NAMESPACE, RPC_TIMEOUT_SEC, CONCURRENCY_PER_QUEUE, TARGET_SVC_SCHEME,
// TARGET_SVC_PORT).
struct service_defaults {
  std::string namespace_ = "default";
  std::chrono::milliseconds timeout{60'000};
  std::uint32_t concurrency = 32;
  std::string scheme = "http";
  std::optional<std::uint16_t> port;
};

}  // namespace sluice::services
