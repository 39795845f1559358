#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include "sluice/http/client.hpp"
#include "sluice/rpc/rpc_message.hpp"

namespace sluice::worker {

// What became of one delivery: the outcome label of sluice_worker_messages_total.
enum class outcome {
  ok,              // the target answered (any status: its status is the caller's business)
  upstream_error,  // unreachable, cut off mid-response, response too large, a bad batch answer
  timeout,         // the target did not answer before the request's deadline
  expired,         // the caller had given up before a worker got the request: never forwarded
  malformed,       // not an rpc request: rejected without requeue
  no_route,        // a flavour with a route found no target: 502 no_route, 503 route_unavailable
  invalid_route_header,  // an X-Sluice-Tenant/-Env/-Version override is not a route name: 400
};
inline constexpr std::size_t outcome_count = 7;
const char* to_string(outcome o);

// The error codes callers see (in rpc_reply::error_code and the ingress's JSON error).
inline constexpr std::string_view upstream_unavailable = "upstream_unavailable";
inline constexpr std::string_view upstream_timeout = "upstream_timeout";
inline constexpr std::string_view upstream_response_too_large = "upstream_response_too_large";
inline constexpr std::string_view upstream_bad_batch = "upstream_bad_batch";

// sluice's own answer for a target that could not answer: status 502/504, the error code and
// message, and the API's JSON error as the body (so a consumer of the reply queue that only
// reads status and body still gets a meaningful answer).
rpc::rpc_reply error_reply(int status, std::string_view code, std::string message);

// The reply for a failed http::client::send(): connect_failed and bad_response -> 502
// upstream_unavailable, timeout -> 504 upstream_timeout, response_too_large -> 502
// upstream_response_too_large. `ec` must not be client_errc::cancelled (nothing is answered
// then: the delivery is left to the broker).
rpc::rpc_reply reply_for_error(std::error_code ec);

// The outcome label of a reply made by this module (or a target's answer).
outcome outcome_of(const rpc::rpc_reply& reply);

// A target's answer as a reply: status, headers (hop-by-hop ones dropped, the body is already
// de-chunked) and body.
rpc::rpc_reply reply_for_response(http::client_response response);

}  // namespace sluice::worker
