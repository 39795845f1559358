#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sluice/proxy/async_submitter.hpp"
#include "sluice/push/push_service.hpp"
#include "sluice/services/service_registry.hpp"

namespace sluice::requests {

// Makes an async proxy request durable through the push path (the spine: same guarantees as a
// push, PostgreSQL or the file buffer while it is down, replayed later) as one message of the
// reserved queue "@async.<service>" whose payload is the request's envelope
// (rpc/async_envelope.hpp); the relay publishes it as the request. The request id is that
// message's id. An Idempotency-Key is the message's transactionId: a repeat for the same
// service is the push path's duplicate and answers the first request's id (repeat = true),
// whatever the repeat's method, target or body.
//
// Errors are the push path's own answers (503 + Retry-After when the push queue or the file
// buffer is full, 503 duplicate_in_flight, ...), plus 404 service_not_found (the service
// vanished since the route looked it up) and 400 invalid_request for an Idempotency-Key that a
// push's transactionId could not be (1 to 256 bytes of UTF-8 without control characters).
class async_request_submitter final : public proxy::async_submitter {
 public:
  // `services` gives the service's namespace (the exchange is <namespace>.<service>).
  async_request_submitter(push::push_service& pushes, const services::service_registry& services);

  boost::asio::awaitable<proxy::async_submit_result> submit(
      rpc::rpc_request request, rpc::reply_address reply,
      std::optional<std::string> idempotency_key) override;

 private:
  push::push_service& pushes_;
  const services::service_registry& services_;
};

// Why `key` cannot be an Idempotency-Key of an async request; nullopt when it can.
std::optional<std::string> idempotency_key_problem(std::string_view key);

}  // namespace sluice::requests
