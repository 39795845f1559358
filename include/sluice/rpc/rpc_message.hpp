#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/amqp/delivery.hpp"
#include "sluice/amqp/publisher.hpp"

namespace sluice::rpc {

using header_list = std::vector<std::pair<std::string, std::string>>;

// A proxied HTTP request as it travels from the ingress to a worker. The wire form (the README
// documents it; other consumers may rely on it):
//   exchange     <namespace>.<service> (headers type), routing key ""
//   properties   correlation_id, reply_to (sync requests), message_id = request id,
//                expiration = remaining deadline in ms (sync requests only), delivery_mode 2 for
//                async requests (1 otherwise), content_type application/octet-stream
//   headers      flavour (the binding key), x-sluice-method, x-sluice-target (relative to the
//                flavour's URL: the bytes after /proxy/{service} and ?query, undecoded; the
//                worker prefixes the flavour URL's path), x-sluice-headers (the HTTP
//                header block, "Name: value\r\n" per header, in order, duplicates kept),
//                x-sluice-deadline-ms (Unix epoch ms; absent for async requests),
//                x-sluice-service, x-sluice-async (bool, async requests only)
//   body         the HTTP request body, byte-exact
struct rpc_request {
  std::string id;  // the request id: X-Request-Id as sent on, and the async request's id
  std::string service;
  std::string flavour;
  std::string method;
  std::string target;
  header_list headers;
  std::string body;
  std::int64_t deadline_ms = 0;  // 0 = none (async requests wait as long as it takes)
  bool async = false;
};

// Where a published request is to be answered; empty for an async request nobody waits for.
struct reply_address {
  std::string reply_to;
  std::string correlation_id;
};

amqp::outgoing_message encode_request(const rpc_request& request, std::string exchange,
                                      const reply_address& reply, std::int64_t now_ms);
// nullopt when the delivery is not an rpc_request (`why` says what is missing).
std::optional<rpc_request> decode_request(const amqp::delivery& delivery, std::string* why);
// Where the delivery asks to be answered (empty fields when it does not).
reply_address reply_address_of(const amqp::delivery& delivery);

// The outcome a worker sends back: the target's response, or sluice's own error when the
// target could not answer (error_code upstream_unavailable, upstream_timeout, ...).
struct rpc_reply {
  int status = 0;
  header_list headers;
  std::string body;
  std::string error_code;  // empty: `status`, `headers`, `body` are the target's
  std::string error_message;
};

// Wire form: default exchange, routing key reply_to, correlation_id, not persistent; headers
// x-sluice-status (int32), x-sluice-headers (as above), x-sluice-error (when error_code is
// set) and x-sluice-error-message; body = the response body.
amqp::outgoing_message encode_reply(const rpc_reply& reply, const reply_address& to);
std::optional<rpc_reply> decode_reply(const amqp::delivery& delivery, std::string* why);

// "Name: value\r\n" lines <-> pairs; parse_header_block returns nullopt on a malformed block.
std::string format_header_block(const header_list& headers);
std::optional<header_list> parse_header_block(std::string_view block);

}  // namespace sluice::rpc
