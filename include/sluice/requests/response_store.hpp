#pragma once

#include <chrono>
#include <system_error>

#include "sluice/store/pg_pool.hpp"
#include "sluice/worker/response_sink.hpp"

namespace sluice::requests {

// Stores the outcome of an async request in sluice_rpc_responses (migration 5): status 'done'
// with response_json(reply), or 'failed' with error_json(reply) when the reply carries sluice's
// own error. Idempotent: a redelivered request stored again keeps the first outcome (ON
// CONFLICT DO NOTHING) and succeeds, so the worker acks it. A request whose id is not a uuid
// (not published by sluice's relay: nobody can poll for it) is logged and not stored, and
// counts as stored: retrying could never succeed.
class response_store final : public worker::response_sink {
 public:
  response_store(store::pg_pool& pool, std::chrono::milliseconds statement_timeout);

  boost::asio::awaitable<std::error_code> store(const rpc::rpc_request& request,
                                                const rpc::rpc_reply& reply) override;

 private:
  store::pg_pool& pool_;
  std::chrono::milliseconds statement_timeout_;
};

}  // namespace sluice::requests
