#include "sluice/proxy/forwarding.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <vector>

#include "sluice/core/ascii_lower.hpp"

namespace sluice::proxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The comma-separated tokens of every Connection header.
std::vector<std::string_view> connection_tokens(const http::request& req) {
  std::vector<std::string_view> out;
  for (const auto& [name, value] : req.headers) {
    if (!ascii_iequals(name, "Connection"))
      continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const auto token = trim(rest.substr(0, comma));
      if (!token.empty())
        out.push_back(token);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return out;
}

constexpr char hex_digits[] = "0123456789abcdef";

void append_hex(std::string& out, std::mt19937_64& rng, std::size_t bytes) {
  while (bytes > 0) {
    std::uint64_t r = rng();
    for (int i = 0; i < 8 && bytes > 0; ++i, --bytes) {
      // A trace or span id of all zeros is invalid: with 64 random bits per 8 bytes the
      // chance is negligible, and the caller re-rolls such an id anyway.
      out.push_back(hex_digits[(r >> 4) & 0xf]);
      out.push_back(hex_digits[r & 0xf]);
      r >>= 8;
    }
  }
}

bool lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

std::string random_id(std::mt19937_64& rng, std::size_t bytes) {
  std::string id;
  do {
    id.clear();
    append_hex(id, rng, bytes);
  } while (all_zero(id));
  return id;
}

}  // namespace

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::array<std::string_view, 8> names = {
      "connection",        "keep-alive", "te",   "trailer",
      "transfer-encoding", "upgrade",    "host", "proxy-connection"};
  if (name.size() >= 6 && ascii_iequals(name.substr(0, 6), "proxy-"))
    // Proxy-Authenticate, Proxy-Connection, and Proxy-Authorization: on /proxy/* it holds
    // sluice's own bearer token, which must never reach the target.
    return true;
  return std::any_of(names.begin(), names.end(),
                     [name](std::string_view n) { return ascii_iequals(n, name); });
}

bool valid_traceparent(std::string_view v) {
  // version "-" trace-id "-" parent-id "-" flags; a later version may append "-..." fields.
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
    return false;
  const auto version = v.substr(0, 2);
  const auto trace = v.substr(3, 32);
  const auto parent = v.substr(36, 16);
  const auto flags = v.substr(53, 2);
  if (!lower_hex(version) || version == "ff" || !lower_hex(trace) || !lower_hex(parent) ||
      !lower_hex(flags) || all_zero(trace) || all_zero(parent))
    return false;
  if (version == "00")
    return v.size() == 55;
  return v.size() == 55 || v[55] == '-';
}

std::string next_traceparent(std::optional<std::string_view> incoming, std::mt19937_64& rng) {
  std::string out;
  out.reserve(55);
  if (incoming && valid_traceparent(*incoming)) {
    // Forwarded as version 00 (the one this code knows), same trace id and flags.
    out.append("00-").append(incoming->substr(3, 32)).push_back('-');
    out.append(random_id(rng, 8)).push_back('-');
    out.append(incoming->substr(53, 2));
    return out;
  }
  out.append("00-").append(random_id(rng, 16)).push_back('-');
  out.append(random_id(rng, 8)).append("-00");
  return out;
}

rpc::header_list forward_request_headers(const http::request& req, const forwarding_info& info,
                                         std::mt19937_64& rng) {
  const auto listed = connection_tokens(req);
  rpc::header_list out;
  out.reserve(req.headers.size() + 5);
  bool request_id = false;
  bool traceparent = false;
  bool proto = false;
  bool forwarded_host = false;
  std::size_t last_xff = SIZE_MAX;
  for (const auto& [name, value] : req.headers) {
    // Content-Length frames this hop's body; the worker frames the body it sends itself.
    if (is_hop_by_hop(name) || ascii_iequals(name, "Content-Length") ||
        std::any_of(listed.begin(), listed.end(),
                    [&name](std::string_view t) { return ascii_iequals(t, name); }))
      continue;
    if (ascii_iequals(name, "X-Request-Id")) {
      if (request_id)
        continue;  // one id per request: the first, made the request's own
      request_id = true;
      out.emplace_back(name, info.request_id);
      continue;
    }
    if (ascii_iequals(name, "traceparent")) {
      if (traceparent)
        continue;  // the spec allows one; a second would make the trace ambiguous
      traceparent = true;
      out.emplace_back(name, next_traceparent(value, rng));
      continue;
    }
    if (ascii_iequals(name, "X-Forwarded-For"))
      last_xff = out.size();
    proto = proto || ascii_iequals(name, "X-Forwarded-Proto");
    forwarded_host = forwarded_host || ascii_iequals(name, "X-Forwarded-Host");
    out.emplace_back(name, value);
  }
  if (!request_id)
    out.emplace_back("X-Request-Id", info.request_id);
  if (!traceparent)
    out.emplace_back("traceparent", next_traceparent(std::nullopt, rng));
  if (!info.client_address.empty()) {
    if (last_xff != SIZE_MAX) {
      auto& v = out[last_xff].second;
      v += v.empty() ? info.client_address : ", " + info.client_address;
    } else {
      out.emplace_back("X-Forwarded-For", info.client_address);
    }
  }
  if (!proto)
    out.emplace_back("X-Forwarded-Proto", info.proto);
  if (!forwarded_host) {
    if (const auto host = req.header("Host"))
      out.emplace_back("X-Forwarded-Host", std::string(*host));
  }
  return out;
}

void reply_headers(const rpc::header_list& from, http::response& into) {
  into.content_type.clear();
  bool content_type = false;
  into.headers.reserve(into.headers.size() + from.size());
  for (const auto& [name, value] : from) {
    if (is_hop_by_hop(name) || ascii_iequals(name, "Content-Length") ||
        ascii_iequals(name, "X-Request-Id"))
      continue;
    if (ascii_iequals(name, "Content-Type") && !content_type) {
      content_type = true;
      into.content_type = value;
      continue;
    }
    into.headers.emplace_back(name, value);
  }
}

std::string relative_target(std::string_view remainder, std::optional<std::string_view> query) {
  std::string out;
  out.reserve(remainder.size() + (query ? query->size() + 1 : 0));
  out.append(remainder);
  if (query)
    out.append("?").append(*query);
  return out;
}

std::string_view path_remainder(const http::request& req, std::string_view raw_service) {
  static constexpr std::string_view prefix = "/proxy/";
  const std::string_view path = req.path;
  if (path.size() < prefix.size() + raw_service.size())
    return {};
  return path.substr(prefix.size() + raw_service.size());
}

std::optional<std::string_view> raw_query(const http::request& req) {
  const auto q = req.target.find('?');
  if (q == std::string::npos)
    return std::nullopt;
  return std::string_view(req.target).substr(q + 1);
}

std::optional<std::int64_t> parse_timeout_ms(std::string_view value) {
  value = trim(value);
  if (value.empty() || value.size() > 10)
    return std::nullopt;
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n <= 0)
    return std::nullopt;
  return n;
}

preferences parse_prefer(const http::request& req) {
  preferences out;
  for (const auto& [name, value] : req.headers) {
    if (!ascii_iequals(name, "Prefer"))
      continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      auto pref = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      pref = trim(pref.substr(0, pref.find(';')));  // parameters of a preference: unused
      const auto eq = pref.find('=');
      const auto token = trim(pref.substr(0, eq));
      if (ascii_iequals(token, "respond-async")) {
        out.respond_async = true;
      } else if (ascii_iequals(token, "wait") && eq != std::string_view::npos) {
        auto v = trim(pref.substr(eq + 1));
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"')
          v = v.substr(1, v.size() - 2);
        std::int64_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec == std::errc() && end == v.data() + v.size() && n >= 0 && v.size() <= 9)
          out.wait_seconds = n;
      }
    }
  }
  return out;
}

}  // namespace sluice::proxy
