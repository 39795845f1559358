#include "sluice/requests/request_routes.hpp"

#include "sluice/http/caller_checks.hpp"

namespace sluice::requests {
namespace asio = boost::asio;

void add_request_routes(http::router& routes, request_status_reader& reader,
                        std::function<bool()> buffer_unreplayed) {
  routes.add(
      "GET", "/api/v1/requests/{id}", "/api/v1/requests/{id}",
      [&reader, buffer_unreplayed = std::move(buffer_unreplayed)](
          http::request& req) -> asio::awaitable<http::response> {
        const auto id = uuid::parse(req.params["id"]);
        if (!id) {
          co_return http::error_response(400, "invalid_request_id",
                                         "the request id must be a uuid");
        }
        const std::string text = id->to_string();
        auto [ec, state] = co_await reader.read(*id);
        // The reply is the service's answer to its caller: only a caller covering the service
        // reads it. One limited by prefixes cannot be judged when the message is gone.
        if (!ec && state.what != request_state::kind::unknown && req.caller) {
          if (state.service.empty() && !req.caller->prefixes.empty()) {
            co_return http::error_response(
                403, "forbidden",
                "token " + req.caller->name +
                    " is limited to name prefixes and the service of request " + text +
                    " is no longer known");
          }
          if (auto refused = http::refuse_uncovered(req, state.service))
            co_return std::move(*refused);
        }
        const bool unreplayed = !ec && state.what == request_state::kind::unknown &&
                                buffer_unreplayed && buffer_unreplayed();
        co_return status_answer(text, ec, state, unreplayed);
      },
      http::needs(http::access::write));
}

}  // namespace sluice::requests
