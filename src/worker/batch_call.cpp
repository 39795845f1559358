#include "sluice/worker/batch_call.hpp"

#include "sluice/worker/batch_codec.hpp"
#include "sluice/worker/forward_outcome.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

namespace sluice::worker {
namespace asio = boost::asio;

asio::awaitable<std::vector<rpc::rpc_reply>> call_batch(
    const http_transport& transport, const target_origin& url,
    const std::vector<batch_assembler::item>& items, batch_assembler::clock::time_point deadline,
    std::string* why) {
  std::vector<batch_entry> entries;
  std::vector<std::string> ids;
  entries.reserve(items.size());
  ids.reserve(items.size());
  for (const auto& i : items) {
    batch_entry e;
    e.correlation_id = i.correlation_id;
    e.request = &i.request;
    entries.push_back(e);
    ids.push_back(i.correlation_id);
  }
  http::client_request request;
  request.method = "POST";
  request.host = url.host;
  request.port = url.port;
  request.target = url.base_path.empty() ? std::string("/") : url.base_path;
  request.headers.emplace_back("Content-Type", "application/json");
  request.body = encode_batch(entries);
  auto [ec, response] = co_await transport(std::move(request), deadline);
  if (ec == http::client_errc::cancelled)
    throw boost::system::system_error(asio::error::operation_aborted);
  if (ec) {
    if (why)
      *why = ec.message();
    co_return std::vector<rpc::rpc_reply>(items.size(), reply_for_error(ec));
  }
  std::string reason;
  if (response.status < 200 || response.status > 299) {
    reason = "the batch URL answered " + std::to_string(response.status);
  } else if (auto replies = decode_batch_answer(response.body, ids, &reason)) {
    co_return std::move(*replies);
  }
  if (why)
    *why = reason;
  co_return std::vector<rpc::rpc_reply>(
      items.size(), error_reply(502, upstream_bad_batch, "bad batch answer: " + reason));
}

}  // namespace sluice::worker
