#pragma once

#include <optional>
#include <string>

#include "sluice/http/message.hpp"
#include "sluice/rpc/rpc_message.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::proxy {

// Makes an async request (Prefer: respond-async) durable through the push path and gets it
// published; the proxy route calls it and answers 202 (or waits for the reply first, when the
// client asked for wait=N and passed a reply address).
struct async_submit_result {
  std::string id;                       // the request id for /api/v1/requests/{id}
  std::optional<http::response> error;  // set when it could not be made durable (503 etc.)
  bool repeat = false;                  // an Idempotency-Key seen before: `id` is the first's
};

class async_submitter {
 public:
  virtual ~async_submitter() = default;
  // `reply` empty: nobody waits for the reply (only the stored response counts).
  virtual boost::asio::awaitable<async_submit_result> submit(
      rpc::rpc_request request, rpc::reply_address reply,
      std::optional<std::string> idempotency_key) = 0;
};

}  // namespace sluice::proxy
