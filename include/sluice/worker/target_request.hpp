#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/http/client.hpp"
#include "sluice/rpc/rpc_message.hpp"

namespace sluice::worker {

// Where one flavour's requests go: its base URL split for the HTTP client.
struct target_origin {
  std::string host;
  std::uint16_t port = 80;
  std::string base_path;  // "" or "/api" (a trailing '/' is dropped when composing)
};

// The request target the flavour's server gets: the base URL's path followed by the rpc
// target (the bytes after /proxy/{service}, query included, undecoded), e.g. "/api" + "/a?b=1".
// Never empty: "" becomes "/", and "?q" becomes "/?q" under an empty base path.
std::string compose_target(std::string_view base_path, std::string_view rpc_target);

// The headers the target gets: the client's, in order and with duplicates, except Host (the
// client sets the target's), Content-Length (set from the body) and hop-by-hop headers (which
// the ingress drops already: a stray one must not break the keep-alive pool), then
// `X-Flavour: <flavour>` (replacing one the client sent) and `Idempotency-Key` (the client's
// when it sent one, else the request id).
rpc::header_list compose_headers(const rpc::rpc_request& request);

// The Idempotency-Key the target gets: the client's first one, else the request id.
std::string idempotency_key(const rpc::rpc_request& request);

http::client_request compose_request(const rpc::rpc_request& request, const target_origin& to);

// Hop-by-hop headers of RFC 9110 section 7.6.1 and the framing headers a relayed message
// cannot keep (Transfer-Encoding, Content-Length are re-derived from the body).
bool is_hop_by_hop(std::string_view name);
bool is_content_length(std::string_view name);

}  // namespace sluice::worker
