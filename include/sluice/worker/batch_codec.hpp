#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/rpc/rpc_message.hpp"

namespace sluice::worker {

// One request of a batch: the rpc request and the id its answer is matched by.
struct batch_entry {
  std::string correlation_id;
  const rpc::rpc_request* request = nullptr;
};

// The body POSTed to the service's batch URL: a JSON array with one object per request, in
// arrival order:
//   {"method":"POST","path":"/orders?x=1","headers":[["Content-Type","application/json"],...],
//    "body":"...","bodyEncoding":"utf8"|"base64","correlation_id":"..."}
// path is the rpc target (the bytes after /proxy/{service}, query included, undecoded).
// headers is an array of [name, value] pairs, not an object: order and repeated names are kept,
// as for a single forwarded request, X-Flavour and Idempotency-Key included (compose_headers).
// A header byte that is not UTF-8 becomes U+FFFD (JSON strings are Unicode). body is the body
// itself when it is valid UTF-8, else its base64 (RFC 4648, padded).
std::string encode_batch(const std::vector<batch_entry>& entries);

// The batch URL's answer, split back: one reply per entry, in the entries' order. The answer
// must be a JSON array of exactly one object per entry, in any order:
//   {"correlation_id":"...","status":200,"headers":{...}|[[name,value],...],"body":"...",
//    "bodyEncoding":"utf8"|"base64"}
// headers (optional) is an object of strings (or arrays of strings, for repeated names) or an
// array of [name, value] pairs; body (optional) a string, or any other JSON value, which is
// passed on as its JSON text; bodyEncoding defaults to utf8. nullopt, with the reason in `why`,
// for anything else: not JSON, another length, an id missing, unknown or repeated, a status
// outside 200..599, bad base64. The caller then answers every request of the batch 502.
std::optional<std::vector<rpc::rpc_reply>> decode_batch_answer(
    std::string_view body, const std::vector<std::string>& correlation_ids, std::string* why);

}  // namespace sluice::worker
