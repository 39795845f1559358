#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::http {

// What a route needs of its caller. `open` routes answer anyone (probes, metrics, the API
// document); the others need a token with the role once authentication is configured.
// admin implies read and write.
enum class access { open, read, write, admin };

const char* access_name(access a) noexcept;

// Who made a request, as the authenticator found it (a static token, a tokens-file entry or a
// JWT). Handlers that act on names the path does not carry (push items, ingest rows) check
// covers() for each of them; the server checks the route's own name parameter.
struct caller {
  std::string name;  // recorded where an action is audited; never the token itself
  bool read = false;
  bool write = false;
  bool admin = false;
  // Queue/service name prefixes this caller may use; empty = every name.
  std::vector<std::string> prefixes;

  bool may(access a) const noexcept;
  bool covers(std::string_view resource) const noexcept;
};

}  // namespace sluice::http
