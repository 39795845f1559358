#include "sluice/routing/route.hpp"

#include "sluice/core/rfc3339.hpp"

#include <nlohmann/json.hpp>

namespace sluice::routing {

std::size_t route_key_hash::operator()(const route_key& k) const noexcept {
  std::size_t h = std::hash<std::string>{}(k.tenant);
  for (const auto* part : {&k.service, &k.env, &k.version}) {
    h = h * 1'000'003U ^ std::hash<std::string>{}(*part);
  }
  return h;
}

std::string to_string(const route_key& k) {
  return k.tenant + "/" + k.service + "/" + k.env + "/" + k.version;
}

std::string to_json(const route& r) {
  nlohmann::ordered_json j;
  j["id"] = r.id;
  j["tenant"] = r.key.tenant;
  j["service"] = r.key.service;
  j["env"] = r.key.env;
  j["version"] = r.key.version;
  j["url"] = r.url;
  j["is_active"] = r.is_active;
  j["created_at"] = format_rfc3339(r.created_at);
  j["updated_at"] = format_rfc3339(r.updated_at);
  j["registry_version"] = r.registry_version;
  return j.dump();
}

std::optional<std::string> name_problem(std::string_view value) {
  if (value.empty()) {
    return "must not be empty";
  }
  if (value.size() > 64) {
    return "must be at most 64 characters";
  }
  if (value.front() == '.') {
    return "must not start with '.'";
  }
  for (const char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return "may hold only letters, digits, '.', '_' and '-'";
    }
  }
  return std::nullopt;
}

std::optional<std::string> url_problem(std::string_view value) {
  if (value.empty()) {
    return "must not be empty";
  }
  if (value.size() > 2048) {
    return "must be at most 2048 bytes";
  }
  for (const unsigned char c : value) {
    if (c <= 0x20 || c == 0x7f) {
      return "must not hold spaces or control characters";
    }
  }
  std::string_view rest;
  if (value.starts_with("http://")) {
    rest = value.substr(7);
  } else if (value.starts_with("https://")) {
    rest = value.substr(8);
  } else {
    return "must be an absolute http:// or https:// URL";
  }
  const auto host_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, host_end);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  if (authority.empty() || authority.front() == ':') {
    return "must name a host";
  }
  return std::nullopt;
}

}  // namespace sluice::routing
