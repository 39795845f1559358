#include "sluice/api/subscription_routes.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include "sluice/api/queue_name.hpp"
#include "sluice/core/percent_decode.hpp"
#include "sluice/delivery/subscription_json.hpp"
#include "sluice/http/caller_checks.hpp"
#include "sluice/http/json_body.hpp"
#include "sluice/http/list_page.hpp"
#include "sluice/store/errc.hpp"

#include <spdlog/spdlog.h>

namespace sluice::api {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using delivery::subscription;

constexpr std::size_t default_page = 100;
constexpr std::size_t max_page = 1000;

http::response invalid_subscription(const std::string& field, const std::string& message) {
  json body = {
      {"error", {{"code", "invalid_subscription"}, {"message", message}, {"field", field}}}};
  return http::response::json(400, body.dump());
}

struct key {
  std::string queue;
  std::string name;
};

// {queue} and {name} of the path, or the 400 to answer.
std::variant<key, http::response> key_of(const http::request& req) {
  auto queue = queue_param(req);
  if (!queue)
    return invalid_queue();
  const auto it = req.params.find("name");
  std::optional<std::string> name;
  if (it != req.params.end())
    name = percent_decode(it->second);
  if (!name || !delivery::valid_subscription_name(*name)) {
    return invalid_subscription(
        "name", "the subscription name must be 1 to 100 bytes of letters, digits, '-' and '_'");
  }
  return key{std::move(*queue), std::move(*name)};
}

http::response not_found(const key& k) {
  return http::error_response(404, "subscription_not_found",
                              "queue " + k.queue + " has no subscription named " + k.name);
}

http::response store_failed(const delivery::subscription_status& status) {
  const auto kind = store::classify(status.ec, status.sqlstate);
  if (kind == store::failure_kind::overloaded) {
    return http::overloaded_response(503, "overloaded", "too many requests waiting for PostgreSQL",
                                     1);
  }
  if (kind == store::failure_kind::rejected) {
    // sluice wrote what it validated: PostgreSQL refusing it is a bug, not the client's fault.
    spdlog::error("delivery: PostgreSQL refused a subscription write sqlstate={} error=\"{}\"",
                  status.sqlstate, status.message);
    return http::error_response(500, "internal_error", "PostgreSQL refused the subscription");
  }
  spdlog::warn("delivery: subscription store failed error=\"{}\"", status.message);
  return http::overloaded_response(503, "db_unavailable",
                                   "PostgreSQL is not available: " + status.message, 1);
}

http::response modes_failed(const std::error_code& ec) {
  return http::overloaded_response(503, "db_unavailable",
                                   "PostgreSQL is not available: " + ec.message(), 1);
}

http::response ordering_refused(const std::string& queue, const std::string& mode_origin) {
  return http::error_response(
      409, "ordering_needs_broadcast",
      "queue " + queue + " is in queue mode (" + mode_origin +
          "): \"ordering\":\"partition\" needs broadcast mode, whose per-subscription RabbitMQ "
          "queue keeps order across instances (single active consumer); PUT /api/v1/queues/" +
          queue + " {\"mode\":\"broadcast\"} first");
}

std::string with_status(const subscription& s, const subscription_status_provider& status) {
  auto out = delivery::to_api_json(s);
  if (status) {
    if (auto extra = status(s.queue, s.name))
      out["status"] = std::move(*extra);
  }
  return out.dump();
}

void add_one_routes(http::router& routes, delivery::subscription_catalog& catalog,
                    relay::queue_modes& modes, subscription_status_provider status) {
  constexpr const char* path = "/api/v1/queues/{queue}/subscriptions/{name}";

  routes.add(
      "GET", path, path,
      [&catalog, status](http::request& req) -> asio::awaitable<http::response> {
        auto k = key_of(req);
        if (auto* error = std::get_if<http::response>(&k))
          co_return std::move(*error);
        const auto& key = std::get<struct key>(k);
        if (catalog.registry().loaded()) {
          const auto found = catalog.registry().find(key.queue, key.name);
          if (!found)
            co_return not_found(key);
          co_return http::response::json(200, with_status(*found, status));
        }
        // The follower has not read the table yet (PostgreSQL was away at start): ask it.
        const auto deadline = clock::now() + catalog.statement_timeout();
        auto [st, found] = co_await catalog.store().load(key.queue, key.name, deadline);
        if (st)
          co_return store_failed(st);
        if (!found)
          co_return not_found(key);
        co_return http::response::json(200, with_status(*found, status));
      },
      http::needs(http::access::read, "queue"));

  routes.add(
      "PUT", path, path,
      [&catalog, &modes](http::request& req) -> asio::awaitable<http::response> {
        auto k = key_of(req);
        if (auto* error = std::get_if<http::response>(&k))
          co_return std::move(*error);
        const auto& key = std::get<struct key>(k);
        if (auto rejected = http::reject_non_json_body(req))
          co_return std::move(*rejected);
        auto parsed = delivery::parse_subscription(key.queue, key.name, req.body,
                                                   catalog.default_concurrency());
        if (auto* error = std::get_if<delivery::subscription_error>(&parsed))
          co_return invalid_subscription(error->field, error->message);
        const subscription defined = std::move(std::get<subscription>(parsed));
        // The route's service (by default the subscription's name) is where the queue's
        // messages go: a caller may aim them only at a service it covers, as for route changes.
        if (defined.route) {
          if (auto refused = http::refuse_uncovered(req, defined.route->service))
            co_return std::move(*refused);
        }

        const auto deadline = clock::now() + catalog.statement_timeout();
        auto [ec, setting] = co_await modes.get(key.queue, deadline);
        if (ec)
          co_return modes_failed(ec);
        const bool queue_mode = setting.mode == relay::queue_mode::queue;
        const std::string mode_origin = setting.configured
                                            ? "set with PUT /api/v1/queues/" + key.queue
                                            : "DELIVERY_MODE's default";
        if (queue_mode && defined.ordering == delivery::ordering::partition)
          co_return ordering_refused(key.queue, mode_origin);
        auto put = co_await catalog.store().put(defined, queue_mode, deadline);
        if (put.status)
          co_return store_failed(put.status);
        // The store re-reads the mode under its lock: a switch made meanwhile is seen there.
        if (put.ordering_needs_broadcast)
          co_return ordering_refused(key.queue, "just switched");
        if (put.conflict_with) {
          json body = {{"error",
                        {{"code", "subscription_conflict"},
                         {"message", "queue " + key.queue + " is in queue mode (" + mode_origin +
                                         ") and already has subscription " + *put.conflict_with +
                                         ": a queue-mode queue has at most one; PUT "
                                         "/api/v1/queues/" +
                                         key.queue + " {\"mode\":\"broadcast\"} to give it more"},
                         {"subscription", *put.conflict_with}}}};
          co_return http::response::json(409, body.dump());
        }
        // Applied here at once; the notification the write sent reaches the other instances
        // (and this one, re-reading the same row: the registry sees no change).
        subscription stored = std::move(*put.stored);
        spdlog::info("delivery: subscription {}/{} {} by {}", key.queue, key.name,
                     put.created ? "created" : "updated", http::actor_of(req));
        std::string body = delivery::to_json(stored);
        catalog.registry().put(std::move(stored));
        co_return http::response::json(put.created ? 201 : 200, std::move(body));
      },
      http::needs(http::access::admin, "queue"));

  routes.add(
      "DELETE", path, path,
      [&catalog](http::request& req) -> asio::awaitable<http::response> {
        auto k = key_of(req);
        if (auto* error = std::get_if<http::response>(&k))
          co_return std::move(*error);
        const auto& key = std::get<struct key>(k);
        const auto deadline = clock::now() + catalog.statement_timeout();
        const auto removed = co_await catalog.store().remove(key.queue, key.name, deadline);
        if (removed.status)
          co_return store_failed(removed.status);
        // Also when the row was already gone: this instance may not have heard yet.
        catalog.registry().remove(key.queue, key.name);
        if (!removed.found)
          co_return not_found(key);
        spdlog::info("delivery: subscription {}/{} deleted by {}", key.queue, key.name,
                     http::actor_of(req));
        co_return http::response::json(204, "");
      },
      http::needs(http::access::admin, "queue"));

  constexpr const char* resume = "/api/v1/queues/{queue}/subscriptions/{name}/resume";
  routes.add(
      "POST", resume, resume,
      [&catalog, status](http::request& req) -> asio::awaitable<http::response> {
        auto k = key_of(req);
        if (auto* error = std::get_if<http::response>(&k))
          co_return std::move(*error);
        const auto& key = std::get<struct key>(k);
        const auto deadline = clock::now() + catalog.statement_timeout();
        const auto changed =
            co_await catalog.store().set_paused(key.queue, key.name, false, "", deadline);
        if (changed.status)
          co_return store_failed(changed.status);
        if (!changed.found) {
          catalog.registry().remove(key.queue, key.name);
          co_return not_found(key);
        }
        auto [st, found] = co_await catalog.store().load(key.queue, key.name, deadline);
        if (st)
          co_return store_failed(st);
        if (!found)  // deleted right after the resume
          co_return not_found(key);
        std::string body = with_status(*found, status);
        catalog.registry().put(std::move(*found));
        co_return http::response::json(200, std::move(body));
      },
      http::needs(http::access::admin, "queue"));
}

void add_list_route(http::router& routes, delivery::subscription_catalog& catalog) {
  constexpr const char* path = "/api/v1/queues/{queue}/subscriptions";
  routes.add(
      "GET", path, path,
      [&catalog](http::request& req) -> asio::awaitable<http::response> {
        auto queue = queue_param(req);
        if (!queue)
          co_return invalid_queue();
        // A cursor of another queue's list is refused, not applied.
        const std::string fingerprint = "queue=" + *queue;
        auto page = http::read_page_request(req, fingerprint, default_page, max_page);
        if (auto* error = std::get_if<http::response>(&page))
          co_return std::move(*error);
        const auto& p = std::get<http::page_request>(page);
        std::vector<subscription> all;
        if (catalog.registry().loaded()) {
          for (const auto& s : catalog.registry().of_queue(*queue))
            all.push_back(*s);
        } else {
          const auto deadline = clock::now() + catalog.statement_timeout();
          auto loaded = co_await catalog.store().load_all(*queue, deadline);
          if (loaded.status)
            co_return store_failed(loaded.status);
          all = std::move(loaded.items);
        }
        std::vector<std::string> items;
        std::optional<std::string> next;
        std::string last;
        // Sorted by name: the cursor is the last name of the page, and the next page starts
        // after it, whatever was added or removed meanwhile.
        for (const auto& s : all) {
          if (p.position && s.name <= *p.position)
            continue;
          if (items.size() == p.limit) {
            next = http::encode_cursor(last, fingerprint);
            break;
          }
          items.push_back(delivery::to_json(s));
          last = s.name;
        }
        co_return http::response::json(200, http::list_body(items, p.limit, next));
      },
      http::needs(http::access::read, "queue"));
}

}  // namespace

void add_subscription_routes(http::router& routes, delivery::subscription_catalog& catalog,
                             relay::queue_modes& modes, subscription_status_provider status) {
  add_one_routes(routes, catalog, modes, std::move(status));
  add_list_route(routes, catalog);
}

}  // namespace sluice::api
