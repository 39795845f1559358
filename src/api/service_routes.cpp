#include "sluice/api/service_routes.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include "sluice/core/percent_decode.hpp"
#include "sluice/http/caller_checks.hpp"
#include "sluice/http/json_body.hpp"
#include "sluice/http/list_page.hpp"
#include "sluice/services/service_json.hpp"
#include "sluice/store/errc.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::api {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using services::service;
using services::service_source;

constexpr std::size_t default_page = 100;
constexpr std::size_t max_page = 1000;

// 400 invalid_service with the field it is about, next to code and message.
http::response invalid_service(const std::string& field, const std::string& message) {
  json body = {{"error", {{"code", "invalid_service"}, {"message", message}, {"field", field}}}};
  return http::response::json(400, body.dump());
}

std::variant<std::string, http::response> service_param(const http::request& req) {
  const auto it = req.params.find("service");
  std::optional<std::string> name;
  if (it != req.params.end())
    name = percent_decode(it->second);
  if (!name || !services::valid_name(*name)) {
    return invalid_service("name",
                           "the service name must be 1 to 100 bytes of letters, digits, '-' "
                           "and '_'");
  }
  return std::move(*name);
}

http::response not_found(const std::string& name) {
  return http::error_response(404, "service_not_found", "no service named " + name);
}

http::response managed_by_file(const std::string& name) {
  return http::error_response(409, "service_managed_by_file",
                              "service " + name +
                                  " is defined by SERVICES_FILE, which wins over the API: change "
                                  "it there");
}

http::response store_failed(const services::store_status& status) {
  if (store::classify(status.ec, status.sqlstate) == store::failure_kind::overloaded) {
    return http::overloaded_response(503, "overloaded", "too many requests waiting for PostgreSQL",
                                     1);
  }
  if (store::classify(status.ec, status.sqlstate) == store::failure_kind::rejected) {
    // sluice wrote what it validated: PostgreSQL refusing it is a bug, not the client's fault.
    spdlog::error("services: PostgreSQL refused a service write sqlstate={} error=\"{}\"",
                  status.sqlstate, status.message);
    return http::error_response(500, "internal_error", "PostgreSQL refused the service");
  }
  spdlog::warn("services: store failed error=\"{}\"", status.message);
  return http::overloaded_response(503, "db_unavailable",
                                   "PostgreSQL is not available: " + status.message, 1);
}

// The kept schedule must still fit a new definition (PUT without "schedule").
std::optional<std::string> schedule_misfit(const service& defined,
                                           const services::service_registry::snapshot& stored) {
  if (defined.traffic || !stored || !stored->traffic)
    return std::nullopt;
  for (const auto& w : stored->traffic->flavours) {
    if (!defined.find_flavour(w.name))
      return w.name;
  }
  return std::nullopt;
}

void add_service_crud(http::router& routes, services::service_catalog& catalog) {
  routes.add(
      "GET", "/api/v1/services/{service}", "/api/v1/services/{service}",
      [&catalog](http::request& req) -> asio::awaitable<http::response> {
        auto name = service_param(req);
        if (auto* error = std::get_if<http::response>(&name))
          co_return std::move(*error);
        const auto& n = std::get<std::string>(name);
        const auto found = catalog.registry().find(n);
        if (!found)
          co_return not_found(n);
        co_return http::response::json(200, services::to_json(*found));
      },
      http::needs(http::access::read, "service"));

  routes.add(
      "PUT", "/api/v1/services/{service}", "/api/v1/services/{service}",
      [&catalog](http::request& req) -> asio::awaitable<http::response> {
        auto name = service_param(req);
        if (auto* error = std::get_if<http::response>(&name))
          co_return std::move(*error);
        const auto& n = std::get<std::string>(name);
        if (auto rejected = http::reject_non_json_body(req))
          co_return std::move(*rejected);
        if (catalog.registry().find_in(service_source::file, n))
          co_return managed_by_file(n);
        auto parsed = services::parse_service(n, req.body, catalog.defaults());
        if (auto* error = std::get_if<services::parse_error>(&parsed))
          co_return invalid_service(error->field, error->message);
        service defined = std::move(std::get<service>(parsed));
        defined.source = service_source::api;
        if (auto misfit =
                schedule_misfit(defined, catalog.registry().find_in(service_source::api, n))) {
          co_return invalid_service(
              "flavours", "the service's schedule sends traffic to flavour '" + *misfit +
                              "', which this definition drops: change the schedule first (PUT "
                              "/api/v1/services/" +
                              n + "/schedule) or delete it");
        }
        const auto deadline = clock::now() + catalog.statement_timeout();
        auto put = co_await catalog.store().put(defined, deadline);
        if (put.status)
          co_return store_failed(put.status);
        // Applied here at once; the notification the write sent reaches the other instances
        // (and this one, re-reading the same row).
        service stored = std::move(*put.stored);
        spdlog::info("services: service {} {} through the API by {}", n,
                     put.created ? "created" : "updated", http::actor_of(req));
        std::string body = services::to_json(stored);
        catalog.registry().put(std::move(stored));
        co_return http::response::json(put.created ? 201 : 200, std::move(body));
      },
      http::needs(http::access::admin, "service"));

  routes.add(
      "DELETE", "/api/v1/services/{service}", "/api/v1/services/{service}",
      [&catalog](http::request& req) -> asio::awaitable<http::response> {
        auto name = service_param(req);
        if (auto* error = std::get_if<http::response>(&name))
          co_return std::move(*error);
        const auto& n = std::get<std::string>(name);
        if (catalog.registry().find_in(service_source::file, n))
          co_return managed_by_file(n);
        const auto deadline = clock::now() + catalog.statement_timeout();
        const auto removed = co_await catalog.store().remove(n, deadline);
        if (removed.status)
          co_return store_failed(removed.status);
        // Also when the row was already gone: this instance may not have heard yet.
        catalog.registry().remove(service_source::api, n);
        if (removed.found) {
          spdlog::info("services: service {} deleted through the API by {}", n,
                       http::actor_of(req));
          co_return http::response::json(204, "");
        }
        if (catalog.registry().find_in(service_source::env, n)) {
          co_return http::error_response(
              409, "service_managed_by_env",
              "service " + n +
                  " is defined by the environment: PUT overrides it, but it cannot be deleted");
        }
        co_return not_found(n);
      },
      http::needs(http::access::admin, "service"));

  routes.add(
      "GET", "/api/v1/services", "/api/v1/services",
      [&catalog](http::request& req) -> asio::awaitable<http::response> {
        const auto ns = req.query_param("namespace");
        const std::string fingerprint = ns ? "namespace=" + *ns : std::string();
        auto page = http::read_page_request(req, fingerprint, default_page, max_page);
        if (auto* error = std::get_if<http::response>(&page))
          co_return std::move(*error);
        const auto& p = std::get<http::page_request>(page);
        std::vector<std::string> items;
        std::optional<std::string> next;
        std::string last;
        // all() is sorted by name: the cursor is the last name of the page, and the next
        // page starts after it, whatever was added or removed meanwhile.
        for (const auto& s : catalog.registry().all()) {
          if (p.position && s->name <= *p.position)
            continue;
          if (ns && s->namespace_ != *ns)
            continue;
          // A caller limited by prefixes sees only the services it covers (their flavours'
          // upstream URLs are not for others).
          if (req.caller && !req.caller->covers(s->name))
            continue;
          if (items.size() == p.limit) {
            next = http::encode_cursor(last, fingerprint);
            break;
          }
          items.push_back(services::to_json(*s));
          last = s->name;
        }
        co_return http::response::json(200, http::list_body(items, p.limit, next));
      },
      http::needs(http::access::read));
}

void add_schedule_routes(http::router& routes, services::service_catalog& catalog) {
  routes.add(
      "GET", "/api/v1/services/{service}/schedule", "/api/v1/services/{service}/schedule",
      [&catalog](http::request& req) -> asio::awaitable<http::response> {
        auto name = service_param(req);
        if (auto* error = std::get_if<http::response>(&name))
          co_return std::move(*error);
        const auto& n = std::get<std::string>(name);
        const auto found = catalog.registry().find(n);
        if (!found)
          co_return not_found(n);
        if (!found->traffic) {
          co_return http::error_response(404, "schedule_not_found",
                                         "service " + n + " has no schedule");
        }
        co_return http::response::json(200, services::to_json(*found->traffic));
      },
      http::needs(http::access::read, "service"));

  routes.add(
      "PUT", "/api/v1/services/{service}/schedule", "/api/v1/services/{service}/schedule",
      [&catalog](http::request& req) -> asio::awaitable<http::response> {
        auto name = service_param(req);
        if (auto* error = std::get_if<http::response>(&name))
          co_return std::move(*error);
        const auto& n = std::get<std::string>(name);
        if (auto rejected = http::reject_non_json_body(req))
          co_return std::move(*rejected);
        auto& registry = catalog.registry();
        if (registry.find_in(service_source::file, n))
          co_return managed_by_file(n);
        // A schedule for the environment's service makes it a stored one (same definition).
        auto base = registry.find_in(service_source::api, n);
        const bool from_env = !base;
        if (!base)
          base = registry.find_in(service_source::env, n);
        if (!base)
          co_return not_found(n);
        auto parsed = services::parse_schedule(req.body, *base);
        if (auto* error = std::get_if<services::parse_error>(&parsed)) {
          co_return invalid_service(error->field, error->message);
        }
        const auto traffic = std::get<services::schedule>(parsed);
        const auto deadline = clock::now() + catalog.statement_timeout();
        services::change_result changed;
        if (from_env) {
          changed = co_await catalog.store().set_schedule_or_insert(*base, traffic, deadline);
        } else {
          changed = co_await catalog.store().set_schedule(n, traffic, deadline);
        }
        if (changed.status)
          co_return store_failed(changed.status);
        if (!changed.found) {
          // Deleted by another instance since this one last heard of it.
          registry.remove(service_source::api, n);
          co_return not_found(n);
        }
        service updated = *base;
        updated.source = service_source::api;
        updated.traffic = traffic;
        registry.put(std::move(updated));
        spdlog::info("services: schedule of {} set through the API by {}", n, http::actor_of(req));
        co_return http::response::json(200, services::to_json(traffic));
      },
      http::needs(http::access::admin, "service"));

  routes.add(
      "DELETE", "/api/v1/services/{service}/schedule", "/api/v1/services/{service}/schedule",
      [&catalog](http::request& req) -> asio::awaitable<http::response> {
        auto name = service_param(req);
        if (auto* error = std::get_if<http::response>(&name))
          co_return std::move(*error);
        const auto& n = std::get<std::string>(name);
        auto& registry = catalog.registry();
        if (registry.find_in(service_source::file, n))
          co_return managed_by_file(n);
        const auto deadline = clock::now() + catalog.statement_timeout();
        const auto changed = co_await catalog.store().set_schedule(n, std::nullopt, deadline);
        if (changed.status)
          co_return store_failed(changed.status);
        if (changed.found) {
          if (auto stored = registry.find_in(service_source::api, n)) {
            service updated = *stored;
            updated.traffic.reset();
            registry.put(std::move(updated));
          }
          spdlog::info("services: schedule of {} deleted through the API by {}", n,
                       http::actor_of(req));
          co_return http::response::json(204, "");
        }
        if (registry.find(n)) {
          co_return http::error_response(404, "schedule_not_found",
                                         "service " + n + " has no schedule");
        }
        co_return not_found(n);
      },
      http::needs(http::access::admin, "service"));
}

}  // namespace

void add_service_routes(http::router& routes, services::service_catalog& catalog) {
  add_service_crud(routes, catalog);
  add_schedule_routes(routes, catalog);
}

}  // namespace sluice::api
