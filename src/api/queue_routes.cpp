#include "sluice/api/queue_routes.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include "sluice/core/percent_decode.hpp"
#include "sluice/http/json_body.hpp"
#include "sluice/push/json_scanner.hpp"
#include "sluice/push/push_request.hpp"

#include <nlohmann/json.hpp>

namespace sluice::api {
namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;

constexpr auto statement_deadline = std::chrono::seconds(5);

// The same rule as the push API's queue field, because the name becomes sluice.<queue> in
// RabbitMQ.
bool valid_queue_name(std::string_view name) {
  if (name.empty() || name.size() > push::max_name_bytes)
    return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == ':';
    if (!ok)
      return false;
  }
  return true;
}

std::optional<std::string> queue_param(const http::request& req) {
  const auto it = req.params.find("queue");
  if (it == req.params.end())
    return std::nullopt;
  auto name = percent_decode(it->second);
  if (!name || !valid_queue_name(*name))
    return std::nullopt;
  return name;
}

http::response invalid_queue() {
  return http::error_response(400, "invalid_queue",
                              "queue must be 1 to " + std::to_string(push::max_name_bytes) +
                                  " bytes of letters, digits and . _ : -");
}

// The body of PUT /api/v1/queues/{queue}: exactly {"mode":"<string>"}, read with the push
// API's scanner so that both APIs judge JSON alike (a repeated key is refused, not merged).
// Either the mode string or the error to answer.
std::variant<std::string, http::response> read_mode_body(std::string_view body) {
  const auto invalid_json = [] {
    return http::error_response(400, "invalid_json", "the body is not valid JSON");
  };
  const auto invalid_request = [](std::string message) {
    return http::error_response(400, "invalid_request", message);
  };
  push::json_scanner s(body);
  if (!s.peek_is('{')) {
    std::string_view ignored;
    if (!s.skip_value(ignored) || !s.at_end())
      return invalid_json();
    return invalid_request(R"(expected {"mode":"queue"|"broadcast"})");
  }
  s.skip_whitespace_and_expect('{');
  std::optional<std::string> mode;
  std::string problem;
  if (s.peek_is('}')) {
    s.skip_whitespace_and_expect('}');
  } else {
    for (;;) {
      std::string key;
      if (!s.read_key(key))
        return invalid_json();
      if (key == "mode" && !mode && s.peek_is('"')) {
        std::string value;
        if (!s.read_string(value))
          return invalid_json();
        mode = std::move(value);
      } else {
        std::string_view ignored;
        if (!s.skip_value(ignored))
          return invalid_json();
        if (problem.empty()) {
          problem = key != "mode" ? "unknown field '" + key + "'"
                    : mode        ? std::string(R"("mode" given twice)")
                                  : std::string(R"(mode must be "queue" or "broadcast")");
        }
      }
      const auto next = s.next_in('}');
      if (next == push::json_scanner::after::error)
        return invalid_json();
      if (next == push::json_scanner::after::closed)
        break;
    }
  }
  if (!s.at_end())
    return invalid_json();
  if (!problem.empty())
    return invalid_request(problem);
  if (!mode)
    return invalid_request(R"(expected {"mode":"queue"|"broadcast"})");
  return *mode;
}

http::response unavailable(const std::error_code& ec) {
  return http::overloaded_response(503, "database_unavailable",
                                   "PostgreSQL is not available: " + ec.message(), 1);
}

std::string setting_body(const std::string& queue, relay::queue_mode mode,
                         std::optional<bool> configured) {
  json body = {{"queue", queue}, {"mode", relay::to_string(mode)}};
  if (configured)
    body["configured"] = *configured;
  return body.dump();
}

}  // namespace

void add_queue_routes(http::router& routes, relay::queue_modes& modes) {
  routes.add("GET", "/api/v1/queues/{queue}", "/api/v1/queues/{queue}",
             [&modes](http::request& req) -> boost::asio::awaitable<http::response> {
               auto queue = queue_param(req);
               if (!queue)
                 co_return invalid_queue();
               const auto deadline = clock::now() + statement_deadline;
               auto [ec, setting] = co_await modes.get(*queue, deadline);
               if (ec)
                 co_return unavailable(ec);
               co_return http::response::json(
                   200, setting_body(*queue, setting.mode, setting.configured));
             });

  routes.add("PUT", "/api/v1/queues/{queue}", "/api/v1/queues/{queue}",
             [&modes](http::request& req) -> boost::asio::awaitable<http::response> {
               auto queue = queue_param(req);
               if (!queue)
                 co_return invalid_queue();
               if (auto rejected = http::reject_non_json_body(req))
                 co_return std::move(*rejected);
               auto read = read_mode_body(req.body);
               if (auto* error = std::get_if<http::response>(&read))
                 co_return std::move(*error);
               const auto mode = relay::parse_queue_mode(std::get<std::string>(read));
               if (!mode)
                 co_return http::error_response(400, "invalid_request",
                                                R"(mode must be "queue" or "broadcast")");
               const auto deadline = clock::now() + statement_deadline;
               const auto ec = co_await modes.set(*queue, *mode, deadline);
               if (ec)
                 co_return unavailable(ec);
               co_return http::response::json(200, setting_body(*queue, *mode, std::nullopt));
             });
}

}  // namespace sluice::api
