#include "sluice/worker/target_request.hpp"

#include <array>

#include "sluice/core/ascii_lower.hpp"

namespace sluice::worker {
namespace {}  // namespace

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::array<std::string_view, 10> names{
      "connection",        "keep-alive",    "proxy-connection",    "te",
      "trailer",           "upgrade",       "proxy-authorization", "proxy-authenticate",
      "transfer-encoding", "content-length"};
  for (const auto n : names) {
    if (ascii_iequals(name, n))
      return true;
  }
  return false;
}

bool is_content_length(std::string_view name) {
  return ascii_iequals(name, "content-length");
}

std::string compose_target(std::string_view base_path, std::string_view rpc_target) {
  // The base path's trailing '/' is not doubled by a remainder that starts with one, and is
  // kept when nothing follows ("http://h/api/" and /proxy/svc is "/api/").
  if (!base_path.empty() && base_path.back() == '/' && !rpc_target.empty() &&
      rpc_target.front() == '/')
    base_path.remove_suffix(1);
  std::string out;
  out.reserve(base_path.size() + rpc_target.size() + 1);
  out += base_path;
  if (out.empty() && (rpc_target.empty() || rpc_target.front() != '/'))
    out += '/';
  out += rpc_target;
  return out;
}

std::string idempotency_key(const rpc::rpc_request& request) {
  for (const auto& [name, value] : request.headers) {
    if (ascii_iequals(name, "idempotency-key"))
      return value;
  }
  return request.id;
}

rpc::header_list compose_headers(const rpc::rpc_request& request) {
  rpc::header_list out;
  out.reserve(request.headers.size() + 2);
  bool has_key = false;
  for (const auto& [name, value] : request.headers) {
    if (ascii_iequals(name, "host") || ascii_iequals(name, "x-flavour") || is_hop_by_hop(name))
      continue;
    if (ascii_iequals(name, "idempotency-key"))
      has_key = true;
    out.emplace_back(name, value);
  }
  out.emplace_back("X-Flavour", request.flavour);
  if (!has_key)
    out.emplace_back("Idempotency-Key", request.id);
  return out;
}

http::client_request compose_request(const rpc::rpc_request& request, const target_origin& to) {
  http::client_request out;
  out.method = request.method;
  out.host = to.host;
  out.port = to.port;
  out.target = compose_target(to.base_path, request.target);
  out.headers = compose_headers(request);
  out.body = request.body;
  return out;
}

}  // namespace sluice::worker
