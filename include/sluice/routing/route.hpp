#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::routing {

// What a route is found by: the route control plane's four names.
struct route_key {
  std::string tenant;
  std::string service;
  std::string env;
  std::string version;

  bool operator==(const route_key&) const = default;
  auto operator<=>(const route_key&) const = default;
};

struct route_key_hash {
  std::size_t operator()(const route_key& k) const noexcept;
};

// "tenant/service/env/version", for logs and metrics' help texts (names cannot hold '/').
std::string to_string(const route_key& k);

// One row of sluice_routes (migration 7).
struct route {
  std::int64_t id = 0;
  route_key key;
  std::string url;
  bool is_active = true;
  std::chrono::system_clock::time_point created_at{};
  std::chrono::system_clock::time_point updated_at{};
  std::int64_t registry_version = 0;  // the registry version of this row's last change

  bool operator==(const route&) const = default;
};

// The seed's route object: {"id","tenant","service","env","version","url","is_active",
// "created_at","updated_at"} (RFC 3339 UTC times), plus "registry_version".
std::string to_json(const route& r);

// Names: 1 to 64 of [A-Za-z0-9._-], not starting with '.' (they end up in URLs, headers and
// metric help texts). nullopt = valid, else the problem for a 400 naming the field.
std::optional<std::string> name_problem(std::string_view value);
// url: absolute http:// or https:// with a host, at most 2048 bytes, no whitespace or control
// characters.
std::optional<std::string> url_problem(std::string_view value);

}  // namespace sluice::routing
