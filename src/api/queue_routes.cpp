#include "sluice/api/queue_routes.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include "sluice/api/queue_name.hpp"
#include "sluice/delivery/subscription_catalog.hpp"
#include "sluice/http/caller_checks.hpp"
#include "sluice/http/json_body.hpp"
#include "sluice/push/json_scanner.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::api {
namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;

constexpr auto statement_deadline = std::chrono::seconds(5);

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

// A queue-mode queue is consumed by at most one subscription, and without ordering (its
// RabbitMQ queue is the relay's, which lacks x-single-active-consumer): a switch to queue mode
// that would break either is refused. The check and the write run in one transaction under the
// lock subscription puts take, so a subscription added meanwhile cannot slip in. The answer
// when refused, or nothing when switched.
boost::asio::awaitable<std::optional<http::response>> switch_to_queue_mode(
    delivery::subscription_catalog& subscriptions, const std::string& queue) {
  const auto deadline = clock::now() + subscriptions.statement_timeout();
  const auto r = co_await subscriptions.store().switch_to_queue_mode(queue, deadline);
  if (r.status) {
    co_return http::overloaded_response(503, "database_unavailable",
                                        "PostgreSQL is not available: " + r.status.message, 1);
  }
  if (r.switched)
    co_return std::nullopt;
  if (r.subscriptions.size() >= 2) {
    std::string names;
    for (const auto& name : r.subscriptions)
      names += (names.empty() ? "" : ", ") + name;
    co_return http::error_response(
        409, "subscription_conflict",
        "queue " + queue + " has " + std::to_string(r.subscriptions.size()) + " subscriptions (" +
            names + "): a queue-mode queue has at most one; delete all but one first");
  }
  co_return http::error_response(409, "ordering_needs_broadcast",
                                 "subscription " + r.ordered.value_or("?") + " of queue " + queue +
                                     " has \"ordering\":\"partition\", which needs broadcast mode");
}

}  // namespace

void add_queue_routes(http::router& routes, relay::queue_modes& modes,
                      delivery::subscription_catalog* subscriptions) {
  routes.add(
      "GET", "/api/v1/queues/{queue}", "/api/v1/queues/{queue}",
      [&modes](http::request& req) -> boost::asio::awaitable<http::response> {
        auto queue = queue_param(req);
        if (!queue)
          co_return invalid_queue();
        const auto deadline = clock::now() + statement_deadline;
        auto [ec, setting] = co_await modes.get(*queue, deadline);
        if (ec)
          co_return unavailable(ec);
        co_return http::response::json(200, setting_body(*queue, setting.mode, setting.configured));
      },
      http::needs(http::access::read, "queue"));

  routes.add(
      "PUT", "/api/v1/queues/{queue}", "/api/v1/queues/{queue}",
      [&modes, subscriptions](http::request& req) -> boost::asio::awaitable<http::response> {
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
        if (subscriptions && *mode == relay::queue_mode::queue) {
          if (auto refused = co_await switch_to_queue_mode(*subscriptions, *queue))
            co_return std::move(*refused);
          // Written under the lock. A second, unlocked write for the cache could land
          // after a switch back to broadcast and the subscriptions it let in, leaving a
          // queue-mode queue with several: the cache is re-read instead.
          if (const auto ec = co_await modes.refresh(deadline))
            co_return unavailable(ec);
          spdlog::info("relay: queue {} set to queue mode by {}", *queue, http::actor_of(req));
          co_return http::response::json(200, setting_body(*queue, *mode, std::nullopt));
        }
        const auto ec = co_await modes.set(*queue, *mode, deadline);
        if (ec)
          co_return unavailable(ec);
        spdlog::info("relay: queue {} set to {} mode by {}", *queue, relay::to_string(*mode),
                     http::actor_of(req));
        co_return http::response::json(200, setting_body(*queue, *mode, std::nullopt));
      },
      http::needs(http::access::admin, "queue"));
}

}  // namespace sluice::api
