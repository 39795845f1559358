#pragma once

#include <string>

#include "sluice/rpc/rpc_message.hpp"

namespace sluice::requests {

// The stored outcome of an async request, as GET /api/v1/requests/{id} shows it:
//   response (the target answered, whatever its status):
//     {"status":201,"headers":{"content-type":"application/json","set-cookie":["a=1","b=2"]},
//      "body":"...","bodyEncoding":"utf8"|"base64"}
//     Header names are lower-cased (HTTP names are case-insensitive); repeated headers are
//     joined with ", " in order (RFC 9110 §5.3), except set-cookie, which cannot be joined
//     and is always an array. Values are text: bytes that are not UTF-8 (or NUL) become
//     U+FFFD. The body is utf8 when it is valid UTF-8 without NUL bytes, else base64.
//   error (sluice could not get an answer: error_code set, e.g. upstream_unavailable):
//     {"code":"upstream_unavailable","message":"..."}
std::string response_json(const rpc::rpc_reply& reply);
std::string error_json(const rpc::rpc_reply& reply);

}  // namespace sluice::requests
