#pragma once

#include <system_error>

#include "sluice/rpc/rpc_message.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::worker {

// Where a worker stores the outcome of an async request (Prefer: respond-async) before it acks
// the delivery: PostgreSQL's sluice_rpc_responses in the daemon. An error means "not stored";
// the worker keeps the outcome and tries again, and acks only after a success.
class response_sink {
 public:
  virtual ~response_sink() = default;
  virtual boost::asio::awaitable<std::error_code> store(const rpc::rpc_request& request,
                                                        const rpc::rpc_reply& reply) = 0;
};

}  // namespace sluice::worker
