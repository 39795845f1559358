#include "sluice/auth/roles.hpp"

namespace sluice::auth {

std::optional<http::access> role_named(std::string_view name) noexcept {
  if (name == "read")
    return http::access::read;
  if (name == "write")
    return http::access::write;
  if (name == "admin")
    return http::access::admin;
  return std::nullopt;
}

void grant(http::caller& who, http::access role) noexcept {
  switch (role) {
    case http::access::open:
      break;
    case http::access::read:
      who.read = true;
      break;
    case http::access::write:
      who.write = true;
      break;
    case http::access::admin:
      who.admin = true;
      break;
  }
}

}  // namespace sluice::auth
