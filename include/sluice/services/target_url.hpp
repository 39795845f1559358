#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::services {

// A flavour's or batch URL split for the HTTP client: absolute http:// only (https targets are
// not supported yet), a host (name, IPv4, or [IPv6]), an optional port, an optional path; no
// user info, query or fragment. The path keeps what was written ("" when absent); the proxy
// prefixes it to the bytes after /proxy/{service}.
struct http_url {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 80;
  bool port_given = false;
  std::string path;
};

// nullopt and a reason in `why` (when given) for anything else.
std::optional<http_url> parse_http_url(std::string_view url, std::string* why = nullptr);

// The same with an optional query (RFC 3986 query characters), kept at the end of `path`
// ("/hook?token=x"; "/?token=x" when the URL has no path). Subscription targets may carry one;
// the proxy's base URLs may not (it appends the client's path and query).
std::optional<http_url> parse_http_url_with_query(std::string_view url, std::string* why = nullptr);

}  // namespace sluice::services
