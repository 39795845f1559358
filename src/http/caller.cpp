#include "sluice/http/caller.hpp"

namespace sluice::http {

const char* access_name(access a) noexcept {
  switch (a) {
    case access::open:
      return "open";
    case access::read:
      return "read";
    case access::write:
      return "write";
    case access::admin:
      return "admin";
  }
  return "admin";
}

bool caller::may(access a) const noexcept {
  switch (a) {
    case access::open:
      return true;
    case access::read:
      return read || admin;
    case access::write:
      return write || admin;
    case access::admin:
      return admin;
  }
  return false;
}

bool caller::covers(std::string_view resource) const noexcept {
  if (prefixes.empty())
    return true;
  for (const auto& p : prefixes) {
    if (resource.starts_with(p))
      return true;
  }
  return false;
}

}  // namespace sluice::http
