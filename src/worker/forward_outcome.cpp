#include "sluice/worker/forward_outcome.hpp"

#include "sluice/http/message.hpp"
#include "sluice/services/route_target.hpp"
#include "sluice/worker/flavour_route.hpp"
#include "sluice/worker/target_request.hpp"

namespace sluice::worker {

const char* to_string(outcome o) {
  switch (o) {
    case outcome::ok:
      return "ok";
    case outcome::upstream_error:
      return "upstream_error";
    case outcome::timeout:
      return "timeout";
    case outcome::expired:
      return "expired";
    case outcome::malformed:
      return "malformed";
    case outcome::no_route:
      return "no_route";
    case outcome::invalid_route_header:
      return "invalid_route_header";
  }
  return "unknown";
}

rpc::rpc_reply error_reply(int status, std::string_view code, std::string message) {
  rpc::rpc_reply out;
  out.status = status;
  const http::response json = http::error_response(status, code, message);
  out.headers.emplace_back("Content-Type", json.content_type);
  out.body = json.body;
  out.error_code = std::string(code);
  out.error_message = std::move(message);
  return out;
}

rpc::rpc_reply reply_for_error(std::error_code ec) {
  if (ec == http::client_errc::timeout)
    return error_reply(504, upstream_timeout, "the target did not answer in time");
  if (ec == http::client_errc::response_too_large)
    return error_reply(502, upstream_response_too_large,
                       "the target's response is larger than the limit");
  if (ec == http::client_errc::bad_response)
    return error_reply(502, upstream_unavailable,
                       "the target's response was not HTTP or was cut off: " + ec.message());
  return error_reply(502, upstream_unavailable, "the target is unreachable: " + ec.message());
}

outcome outcome_of(const rpc::rpc_reply& reply) {
  if (reply.error_code.empty())
    return outcome::ok;
  if (reply.error_code == upstream_timeout)
    return outcome::timeout;
  if (reply.error_code == services::no_route_error ||
      reply.error_code == services::route_unavailable_error)
    return outcome::no_route;
  if (reply.error_code == invalid_route_header_error)
    return outcome::invalid_route_header;
  return outcome::upstream_error;
}

rpc::rpc_reply reply_for_response(http::client_response response) {
  rpc::rpc_reply out;
  out.status = response.status;
  out.headers.reserve(response.headers.size());
  for (auto& [name, value] : response.headers) {
    // Content-Length still describes the body (and a HEAD answer's would-be body): kept.
    if (!is_hop_by_hop(name) || is_content_length(name))
      out.headers.emplace_back(std::move(name), std::move(value));
  }
  out.body = std::move(response.body);
  return out;
}

}  // namespace sluice::worker
