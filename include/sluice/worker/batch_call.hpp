#pragma once

#include <functional>
#include <system_error>
#include <tuple>
#include <vector>

#include "sluice/http/client.hpp"
#include "sluice/worker/batch_assembler.hpp"
#include "sluice/worker/target_request.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::worker {

// The HTTP call of one batch (http::client::send in production, a fake in tests).
using http_transport =
    std::function<boost::asio::awaitable<std::tuple<std::error_code, http::client_response>>(
        http::client_request request, http::client::clock::time_point deadline)>;

// POSTs the batch (encode_batch) to `url` and splits the answer (decode_batch_answer). Every
// request of the batch gets the same error when the call fails: 502 upstream_unavailable,
// 504 upstream_timeout or 502 upstream_response_too_large as for a single request, and 502
// upstream_bad_batch for a non-2xx status or an answer that cannot be split. A cancelled call
// ends by cancellation (the assembler is stopping).
boost::asio::awaitable<std::vector<rpc::rpc_reply>> call_batch(
    const http_transport& transport, const target_origin& url,
    const std::vector<batch_assembler::item>& items, batch_assembler::clock::time_point deadline,
    std::string* why = nullptr);

}  // namespace sluice::worker
