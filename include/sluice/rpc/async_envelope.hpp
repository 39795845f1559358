#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sluice/rpc/rpc_message.hpp"

namespace sluice::rpc {

// An async proxy request (Prefer: respond-async) is made durable as a message of the push path
// in the reserved queue "@async.<service>": '@' is outside the charset the push API accepts for
// queue names, so no HTTP push can write to (or read as its own) such a queue, and the queue
// name scopes an Idempotency-Key (the message's transactionId) to one service. The message's
// namespace field is the service's namespace; its payload is the envelope below. The relay
// publishes such a message not as a queue-mode message but as the rpc_request it carries.
inline constexpr std::string_view async_queue_prefix = "@async.";
std::string async_queue(std::string_view service);
bool is_async_queue(std::string_view queue);
// The service of an async queue ("" for any other queue).
std::string_view service_of_async_queue(std::string_view queue);
// The headers exchange an async request of `service` in `namespace_` goes to.
std::string async_exchange(std::string_view namespace_, std::string_view service);

// The envelope (the message's JSON payload), version 1:
//   {"v":1,"service":"payments","namespace":"shop","flavour":"std","method":"POST",
//    "target":"/charge?x=1","headers":[["Content-Type","application/json"],["X-A","1"],...],
//    "body":"...","bodyEncoding":"utf8"|"base64","reply_to":"...","correlation_id":"..."}
// headers is an array of [name, value] pairs, so order and duplicates survive; a pair whose
// name or value is not valid UTF-8 (obs-text bytes) is [base64(name), base64(value), "base64"];
// "target" is likewise base64 with "targetEncoding":"base64" when it is not UTF-8. The body is
// utf8 when it is valid UTF-8 without NUL bytes, else base64. reply_to and correlation_id are
// present only when someone waits for the reply (Prefer: respond-async, wait=N).
struct async_envelope {
  std::string namespace_;
  rpc_request request;  // id, deadline_ms unset; async = true
  reply_address reply;
};

std::string encode_async_envelope(const rpc_request& request, std::string_view namespace_,
                                  const reply_address& reply);
// nullopt (and `why`) when `payload` is not an envelope of a version this build reads.
std::optional<async_envelope> decode_async_envelope(std::string_view payload, std::string* why);

}  // namespace sluice::rpc
