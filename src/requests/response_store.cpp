#include "sluice/requests/response_store.hpp"

#include "sluice/core/uuid.hpp"
#include "sluice/requests/response_json.hpp"

#include <spdlog/spdlog.h>

namespace sluice::requests {
namespace asio = boost::asio;

namespace {
constexpr std::string_view insert_sql = R"sql(
INSERT INTO sluice_rpc_responses (id, status, response, error)
VALUES ($1::uuid, $2, $3::jsonb, $4::jsonb)
ON CONFLICT (id) DO NOTHING)sql";
}  // namespace

response_store::response_store(store::pg_pool& pool, std::chrono::milliseconds statement_timeout)
    : pool_(pool), statement_timeout_(statement_timeout) {}

asio::awaitable<std::error_code> response_store::store(const rpc::rpc_request& request,
                                                       const rpc::rpc_reply& reply) {
  const auto id = uuid::parse(request.id);
  if (!id) {
    spdlog::warn("requests: async request id=\"{}\" is not a uuid; its outcome is not stored",
                 request.id.substr(0, 64));
    co_return std::error_code{};
  }
  const bool failed = !reply.error_code.empty();
  store::pg_statement s{.sql = insert_sql, .name = "sluice_rpc_response_store"};
  s.params.add(*id);
  s.params.add_text_bytes(failed ? "failed" : "done");
  if (failed) {
    s.params.add_null(store::pg_type::text);
    s.params.add_text_bytes(error_json(reply));
  } else {
    s.params.add_text_bytes(response_json(reply));
    s.params.add_null(store::pg_type::text);
  }
  const store::pg_result r = co_await pool_.execute(s, store::clock::now() + statement_timeout_);
  if (r.ec) {
    spdlog::warn("requests: storing the outcome of id={} failed: {}", id->to_string(),
                 r.message.empty() ? r.ec.message() : r.message);
  }
  co_return r.ec;
}

}  // namespace sluice::requests
