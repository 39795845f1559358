#include "sluice/services/target_url.hpp"

#include <charconv>

namespace sluice::services {
namespace {

bool fail(std::string* why, const char* reason) {
  if (why)
    *why = reason;
  return false;
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool ipv6_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.';
}

// RFC 3986 path characters: unreserved, sub-delims, ':', '@', '/', and percent-escapes.
bool path_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
    case '/':
    case '%':
      return true;
    default:
      return false;
  }
}

bool hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 query characters: the path's, plus '?'.
bool query_char(char c) {
  return c == '?' || path_char(c);
}

}  // namespace

std::optional<http_url> parse_http_url(std::string_view url, std::string* why) {
  constexpr std::string_view scheme = "http://";
  if (url.size() < scheme.size() || url.substr(0, scheme.size()) != scheme) {
    fail(why, "must be an absolute http:// URL");
    return std::nullopt;
  }
  std::string_view rest = url.substr(scheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    fail(why, "must not have a query or fragment");
    return std::nullopt;
  }
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    fail(why, "must not carry user info");
    return std::nullopt;
  }
  http_url out;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close == 1) {
      fail(why, "has a malformed IPv6 host");
      return std::nullopt;
    }
    const std::string_view host = authority.substr(1, close - 1);
    for (char c : host) {
      if (!ipv6_char(c)) {
        fail(why, "has a malformed IPv6 host");
        return std::nullopt;
      }
    }
    out.host = std::string(host);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        fail(why, "has a malformed IPv6 host");
        return std::nullopt;
      }
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (host.empty()) {
      fail(why, "must name a host");
      return std::nullopt;
    }
    for (char c : host) {
      if (!host_char(c)) {
        fail(why, "has a host with characters other than letters, digits, '-', '.', '_'");
        return std::nullopt;
      }
    }
    out.host = std::string(host);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
  }
  if (has_port) {
    unsigned value = 0;
    const auto* end = port_text.data() + port_text.size();
    const auto [ptr, ec] = std::from_chars(port_text.data(), end, value);
    if (port_text.empty() || port_text.size() > 5 || ec != std::errc{} || ptr != end || value < 1 ||
        value > 65535) {
      fail(why, "has a port that is not 1 to 65535");
      return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(value);
    out.port_given = true;
  }
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (!path_char(c) ||
        (c == '%' && (i + 2 >= path.size() || !hex(path[i + 1]) || !hex(path[i + 2])))) {
      fail(why, "has a path with characters that must be percent-encoded");
      return std::nullopt;
    }
  }
  out.path = std::string(path);
  return out;
}

std::optional<http_url> parse_http_url_with_query(std::string_view url, std::string* why) {
  const auto mark = url.find('?');
  if (mark == std::string_view::npos)
    return parse_http_url(url, why);
  const std::string_view query = url.substr(mark + 1);
  if (query.find('#') != std::string_view::npos) {
    fail(why, "must not have a fragment");
    return std::nullopt;
  }
  for (std::size_t i = 0; i < query.size(); ++i) {
    const char c = query[i];
    if (!query_char(c) ||
        (c == '%' && (i + 2 >= query.size() || !hex(query[i + 1]) || !hex(query[i + 2])))) {
      fail(why, "has a query with characters that must be percent-encoded");
      return std::nullopt;
    }
  }
  auto out = parse_http_url(url.substr(0, mark), why);
  if (!out)
    return std::nullopt;
  if (out->path.empty())
    out->path = "/";
  out->path += '?';
  out->path += query;
  return out;
}

}  // namespace sluice::services
