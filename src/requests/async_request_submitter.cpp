#include "sluice/requests/async_request_submitter.hpp"

#include "sluice/core/utf8.hpp"
#include "sluice/rpc/async_envelope.hpp"

namespace sluice::requests {
namespace asio = boost::asio;

std::optional<std::string> idempotency_key_problem(std::string_view key) {
  if (key.empty() || key.size() > push::max_id_bytes)
    return "must be 1 to " + std::to_string(push::max_id_bytes) + " bytes";
  if (!is_valid_utf8(key))
    return "must be UTF-8";
  for (std::size_t i = 0; i < key.size(); ++i) {
    const auto byte = static_cast<unsigned char>(key[i]);
    // As a push's transactionId: no C0 controls, DEL or C1 controls (0xC2 0x80..0x9F).
    const bool c1 = byte == 0xC2 && i + 1 < key.size() &&
                    static_cast<unsigned char>(key[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(key[i + 1]) <= 0x9F;
    if (byte < 0x20 || byte == 0x7f || c1)
      return "must not contain control characters";
  }
  return std::nullopt;
}

async_request_submitter::async_request_submitter(push::push_service& pushes,
                                                 const services::service_registry& services)
    : pushes_(pushes), services_(services) {}

asio::awaitable<proxy::async_submit_result> async_request_submitter::submit(
    rpc::rpc_request request, rpc::reply_address reply,
    std::optional<std::string> idempotency_key) {
  proxy::async_submit_result result;
  const auto service = services_.find(request.service);
  if (!service) {
    result.error = http::error_response(404, "service_not_found",
                                        "no service named \"" + request.service + "\"");
    co_return result;
  }
  if (idempotency_key) {
    if (auto problem = idempotency_key_problem(*idempotency_key)) {
      result.error = http::error_response(400, "invalid_request", "Idempotency-Key " + *problem);
      co_return result;
    }
  }
  message m;
  m.queue = rpc::async_queue(request.service);
  m.partition = "Default";
  m.namespace_ = service->namespace_;
  m.transaction_id = std::move(idempotency_key);
  m.payload = rpc::encode_async_envelope(request, service->namespace_, reply);
  push::push_request pushed;
  pushed.items.push_back(std::move(m));
  const push::push_outcome out = co_await pushes_.push(std::move(pushed));
  if (out.error_status != 0) {
    result.error = out.retry_after_seconds > 0
                       ? http::overloaded_response(out.error_status, out.error_code,
                                                   out.error_message, out.retry_after_seconds)
                       : http::error_response(out.error_status, out.error_code, out.error_message);
    co_return result;
  }
  result.id = out.items.front().id.to_string();
  result.repeat = out.items.front().status == push::item_status::duplicate;
  co_return result;
}

}  // namespace sluice::requests
