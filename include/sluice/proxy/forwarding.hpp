#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "sluice/http/message.hpp"
#include "sluice/rpc/rpc_message.hpp"

namespace sluice::proxy {

// Hop-by-hop headers (RFC 9110 7.6.1) and Host: they describe one connection, not the
// request, and are never carried to the target or back to the client. `name` in any case.
bool is_hop_by_hop(std::string_view name);

// The headers a request goes on with: the client's end-to-end headers byte-exact and in
// order (duplicates kept), without hop-by-hop ones, those a Connection header names and
// Content-Length (the worker frames the body it sends); then
//   X-Request-Id     the request's id (the client's, replaced in place when the server had
//                    to make a new one), appended when absent
//   traceparent      W3C trace context: the client's trace id kept with a new parent span id,
//                    or a new trace when absent or malformed (in place when present)
//   X-Forwarded-For  the client's address appended to the last one, or added
//   X-Forwarded-Proto, X-Forwarded-Host   kept when a proxy in front set them, else added
struct forwarding_info {
  std::string request_id;
  std::string client_address;
  std::string proto = "http";
};
rpc::header_list forward_request_headers(const http::request& req, const forwarding_info& info,
                                         std::mt19937_64& rng);

// The reply's headers as the client gets them: hop-by-hop ones, Content-Length (the server
// frames the body itself) and X-Request-Id (the server writes the request's) dropped;
// Content-Type taken out into `content_type` (empty when the target sent none).
void reply_headers(const rpc::header_list& from, http::response& into);

// W3C trace context (https://www.w3.org/TR/trace-context/): `incoming` kept as the same trace
// with a new parent id when valid, else a new trace (flags 00: sluice samples nothing).
std::string next_traceparent(std::optional<std::string_view> incoming, std::mt19937_64& rng);
bool valid_traceparent(std::string_view value);

// The target carried to the worker, relative to the flavour's URL: the bytes after
// /proxy/{service}, then "?query" when the request had one, undecoded (possibly empty). The
// worker prefixes the flavour URL's path (worker/target_request.hpp, compose_target).
std::string relative_target(std::string_view remainder, std::optional<std::string_view> query);
// The raw bytes of `req` after /proxy/{service} (from the path, not the decoded capture), and
// its query when it had a '?'.
std::string_view path_remainder(const http::request& req, std::string_view raw_service);
std::optional<std::string_view> raw_query(const http::request& req);

// X-Sluice-Timeout-Ms: a positive decimal integer (at most 10 digits); nullopt when malformed.
std::optional<std::int64_t> parse_timeout_ms(std::string_view value);

// Prefer (RFC 7240): respond-async and wait=N, from every Prefer header.
struct preferences {
  bool respond_async = false;
  std::optional<std::int64_t> wait_seconds;
};
preferences parse_prefer(const http::request& req);

}  // namespace sluice::proxy
