#include "sluice/api/route_routes.hpp"

#include <array>
#include <charconv>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sluice/core/rfc3339.hpp"
#include "sluice/http/caller_checks.hpp"
#include "sluice/http/json_body.hpp"
#include "sluice/http/json_fields.hpp"
#include "sluice/http/list_page.hpp"
#include "sluice/store/errc.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::api {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using routing::change_outcome;
using routing::route_key;

constexpr std::size_t default_page = 100;
constexpr std::size_t max_page = 1000;
constexpr std::array<const char*, 4> key_fields{"tenant", "service", "env", "version"};
constexpr std::array<const char*, 2> time_params{"start_time", "end_time"};
constexpr std::array<const char*, 5> actions{"created", "updated", "activated", "deactivated",
                                             "deleted"};

// 400 with the field (or query parameter) it is about, next to code and message.
http::response invalid(std::string_view code, const std::string& field,
                       const std::string& problem) {
  json body = {{"error", {{"code", code}, {"message", field + " " + problem}, {"field", field}}}};
  return http::response::json(400, body.dump());
}

http::response store_failed(const store::statement_status& status) {
  const auto kind = store::classify(status.ec, status.sqlstate);
  if (kind == store::failure_kind::overloaded) {
    return http::overloaded_response(503, "overloaded", "too many requests waiting for PostgreSQL",
                                     1);
  }
  if (kind == store::failure_kind::rejected) {
    // sluice wrote what it validated: PostgreSQL refusing it is a bug, not the client's fault.
    spdlog::error("routing: PostgreSQL refused a route statement sqlstate={} error=\"{}\"",
                  status.sqlstate, status.message);
    return http::error_response(500, "internal_error", "PostgreSQL refused the route statement");
  }
  spdlog::warn("routing: route store failed error=\"{}\"", status.message);
  return http::overloaded_response(503, "db_unavailable",
                                   "PostgreSQL is not available: " + status.message, 1);
}

http::response not_found(const route_key& k) {
  return http::error_response(404, "route_not_found", "no route " + routing::to_string(k));
}

// {"message":…,"route":{…}}: the seed's answer to a change.
http::response route_answer(int status, std::string_view message, const routing::route& r) {
  std::string body = "{\"message\":";
  body += json(message).dump();
  body += ",\"route\":";
  body += routing::to_json(r);
  body += '}';
  return http::response::json(status, std::move(body));
}

struct change_body {
  route_key key;
  std::string url;
};

// A change's body: exactly the key's four names, and "url" when `with_url`. Unknown and missing
// fields are refused by name, as the services and subscriptions APIs do.
std::variant<change_body, http::response> parse_change_body(const http::request& req,
                                                            bool with_url) {
  if (auto rejected = http::reject_non_json_body(req))
    return std::move(*rejected);
  try {
    const json body = http::parse_strict(req.body);
    http::require_object(body, "body");
    for (const auto& [name, value] : body.items()) {
      bool known = with_url && name == "url";
      for (const char* k : key_fields)
        known = known || name == k;
      if (!known)
        return invalid("invalid_route", name, "is not a known field");
    }
    change_body out;
    std::array<std::string*, 4> parts{&out.key.tenant, &out.key.service, &out.key.env,
                                      &out.key.version};
    for (std::size_t i = 0; i < key_fields.size(); ++i) {
      const auto it = body.find(key_fields[i]);
      if (it == body.end())
        return invalid("invalid_route", key_fields[i], "is required");
      *parts[i] = http::string_of(*it, key_fields[i]);
      if (auto problem = routing::name_problem(*parts[i]))
        return invalid("invalid_route", key_fields[i], *problem);
    }
    if (with_url) {
      const auto it = body.find("url");
      if (it == body.end())
        return invalid("invalid_route", "url", "is required");
      out.url = http::string_of(*it, "url");
      if (auto problem = routing::url_problem(out.url))
        return invalid("invalid_route", "url", *problem);
    }
    return out;
  } catch (const http::field_error& e) {
    return invalid("invalid_route", e.field, e.message);
  }
}

// A name filter of the query: absent, or a valid name.
std::variant<std::optional<std::string>, http::response> name_param(const http::request& req,
                                                                    const char* name) {
  auto value = req.query_param(name);
  if (!value)
    return std::optional<std::string>();
  if (auto problem = routing::name_problem(*value))
    return invalid("invalid_filter", name, *problem);
  return value;
}

// The key of DELETE's query: all four names required.
std::variant<route_key, http::response> key_params(const http::request& req) {
  route_key k;
  std::array<std::string*, 4> parts{&k.tenant, &k.service, &k.env, &k.version};
  for (std::size_t i = 0; i < key_fields.size(); ++i) {
    auto value = name_param(req, key_fields[i]);
    if (auto* error = std::get_if<http::response>(&value))
      return std::move(*error);
    auto& v = std::get<std::optional<std::string>>(value);
    if (!v)
      return invalid("invalid_route", key_fields[i], "is required");
    *parts[i] = std::move(*v);
  }
  return k;
}

// The filters tenant/service/env/version, and the fingerprint of the cursor they make.
struct key_filter {
  std::array<std::optional<std::string>, 4> names;
  std::string fingerprint;
};

std::variant<key_filter, http::response> key_filter_of(const http::request& req) {
  key_filter out;
  for (std::size_t i = 0; i < key_fields.size(); ++i) {
    auto value = name_param(req, key_fields[i]);
    if (auto* error = std::get_if<http::response>(&value))
      return std::move(*error);
    out.names[i] = std::move(std::get<std::optional<std::string>>(value));
    if (out.names[i])
      out.fingerprint += std::string(key_fields[i]) + "=" + *out.names[i] + "&";
  }
  return out;
}

// The list's cursor position: the page's last key as "tenant/service/env/version" (names
// cannot hold '/'). Untrusted: every name is checked again.
std::optional<route_key> key_of_position(const std::string& position) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto slash = position.find('/', start);
    parts.push_back(position.substr(start, slash - start));
    if (slash == std::string::npos)
      break;
    start = slash + 1;
  }
  if (parts.size() != 4)
    return std::nullopt;
  for (const auto& p : parts) {
    if (routing::name_problem(p))
      return std::nullopt;
  }
  return route_key{parts[0], parts[1], parts[2], parts[3]};
}

using change_call = std::function<asio::awaitable<routing::change_result>(
    const change_body&, const std::string& actor, store::clock::time_point deadline)>;

http::handler change_handler(route_api api, bool with_url, change_call call, int done_status,
                             std::string_view done_message) {
  return [api, with_url, call = std::move(call), done_status,
          done_message](http::request& req) -> asio::awaitable<http::response> {
    auto parsed = parse_change_body(req, with_url);
    if (auto* error = std::get_if<http::response>(&parsed))
      co_return std::move(*error);
    const auto& body = std::get<change_body>(parsed);
    if (auto refused = http::refuse_uncovered(req, body.key.service))
      co_return std::move(*refused);
    const auto deadline = clock::now() + api.statement_timeout;
    const std::string actor = http::actor_of(req);
    const routing::change_result changed = co_await call(body, actor, deadline);
    switch (changed.outcome) {
      case change_outcome::done:
        if (api.on_change)
          api.on_change(changed);
        co_return route_answer(done_status, done_message, *changed.stored);
      case change_outcome::conflict:
        co_return http::error_response(409, "route_exists",
                                       "route " + routing::to_string(body.key) +
                                           " exists: PUT /api/v1/routes changes its url");
      case change_outcome::not_found:
        co_return not_found(body.key);
      case change_outcome::failed:
        break;
    }
    co_return store_failed(changed.status);
  };
}

void add_change_routes(http::router& routes, const route_api& api) {
  routing::route_store& s = api.store;
  routes.add(
      "POST", "/api/v1/routes", "/api/v1/routes",
      change_handler(
          api, true,
          [&s](const change_body& b, const std::string& actor, store::clock::time_point deadline) {
            return s.create(b.key, b.url, actor, deadline);
          },
          201, "Route created successfully"),
      http::needs(http::access::admin));
  routes.add(
      "PUT", "/api/v1/routes", "/api/v1/routes",
      change_handler(
          api, true,
          [&s](const change_body& b, const std::string& actor, store::clock::time_point deadline) {
            return s.update_url(b.key, b.url, actor, deadline);
          },
          200, "Route updated successfully"),
      http::needs(http::access::admin));
  routes.add(
      "POST", "/api/v1/routes/activate", "/api/v1/routes/activate",
      change_handler(
          api, false,
          [&s](const change_body& b, const std::string& actor, store::clock::time_point deadline) {
            return s.set_active(b.key, true, actor, deadline);
          },
          200, "Route activated successfully"),
      http::needs(http::access::admin));
  routes.add(
      "POST", "/api/v1/routes/deactivate", "/api/v1/routes/deactivate",
      change_handler(
          api, false,
          [&s](const change_body& b, const std::string& actor, store::clock::time_point deadline) {
            return s.set_active(b.key, false, actor, deadline);
          },
          200, "Route deactivated successfully"),
      http::needs(http::access::admin));

  routes.add(
      "DELETE", "/api/v1/routes", "/api/v1/routes",
      [api](http::request& req) -> asio::awaitable<http::response> {
        auto k = key_params(req);
        if (auto* error = std::get_if<http::response>(&k))
          co_return std::move(*error);
        const auto& key = std::get<route_key>(k);
        if (auto refused = http::refuse_uncovered(req, key.service))
          co_return std::move(*refused);
        const auto deadline = clock::now() + api.statement_timeout;
        const std::string actor = http::actor_of(req);
        const auto removed = co_await api.store.remove(key, actor, deadline);
        if (removed.outcome == change_outcome::not_found)
          co_return not_found(key);
        if (removed.outcome != change_outcome::done)
          co_return store_failed(removed.status);
        if (api.on_change)
          api.on_change(removed);
        co_return http::response::json(204, "");
      },
      http::needs(http::access::admin));
}

void add_list_routes(http::router& routes, const route_api& api) {
  routes.add(
      "GET", "/api/v1/routes", "/api/v1/routes",
      [api](http::request& req) -> asio::awaitable<http::response> {
        auto keys = key_filter_of(req);
        if (auto* error = std::get_if<http::response>(&keys))
          co_return std::move(*error);
        auto& kf = std::get<key_filter>(keys);
        // Routes hold their services' URLs: a caller limited by prefixes lists one it covers.
        if (auto refused = http::refuse_unfiltered(req, kf.names[1], "service"))
          co_return std::move(*refused);
        routing::route_filter filter{kf.names[0], kf.names[1], kf.names[2], kf.names[3], {}};
        if (const auto active = req.query_param("active")) {
          if (*active != "true" && *active != "false")
            co_return invalid("invalid_filter", "active", "must be true or false");
          filter.active = *active == "true";
          kf.fingerprint += "active=" + *active;
        }
        auto page = http::read_page_request(req, kf.fingerprint, default_page, max_page);
        if (auto* error = std::get_if<http::response>(&page))
          co_return std::move(*error);
        const auto& p = std::get<http::page_request>(page);
        std::optional<route_key> after;
        if (p.position) {
          after = key_of_position(*p.position);
          if (!after)
            co_return http::cursor_error_response(http::cursor_error::malformed);
        }
        const auto deadline = clock::now() + api.statement_timeout;
        // One more than the page: whether a next page exists, without a count.
        const auto listed = co_await api.store.list(filter, after, p.limit + 1, deadline);
        if (listed.status)
          co_return store_failed(listed.status);
        std::vector<std::string> items;
        std::optional<std::string> next;
        for (const auto& r : listed.routes) {
          if (items.size() == p.limit) {
            next = http::encode_cursor(routing::to_string(listed.routes[p.limit - 1].key),
                                       kf.fingerprint);
            break;
          }
          items.push_back(routing::to_json(r));
        }
        co_return http::response::json(200, http::list_body(items, p.limit, next));
      },
      http::needs(http::access::read));

  routes.add(
      "GET", "/api/v1/routes/events", "/api/v1/routes/events",
      [api](http::request& req) -> asio::awaitable<http::response> {
        auto keys = key_filter_of(req);
        if (auto* error = std::get_if<http::response>(&keys))
          co_return std::move(*error);
        auto& kf = std::get<key_filter>(keys);
        // Events name their services' URLs and who changed them: as for the routes' list.
        if (auto refused = http::refuse_unfiltered(req, kf.names[1], "service"))
          co_return std::move(*refused);
        routing::event_filter filter;
        filter.tenant = kf.names[0];
        filter.service = kf.names[1];
        filter.env = kf.names[2];
        filter.version = kf.names[3];
        if (auto action = req.query_param("action")) {
          bool known = false;
          for (const char* a : actions)
            known = known || *action == a;
          if (!known) {
            co_return invalid("invalid_filter", "action",
                              "must be created, updated, activated, deactivated or deleted");
          }
          kf.fingerprint += "action=" + *action + "&";
          filter.action = std::move(*action);
        }
        for (const char* name : time_params) {
          const auto text = req.query_param(name);
          if (!text)
            continue;
          const auto tp = parse_rfc3339(*text);
          if (!tp) {
            co_return invalid("invalid_time", name,
                              "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z");
          }
          (std::string_view(name) == "start_time" ? filter.start_time : filter.end_time) = *tp;
          kf.fingerprint += std::string(name) + "=" + format_rfc3339(*tp) + "&";
        }
        auto page = http::read_page_request(req, kf.fingerprint, default_page, max_page);
        if (auto* error = std::get_if<http::response>(&page))
          co_return std::move(*error);
        const auto& p = std::get<http::page_request>(page);
        std::optional<std::int64_t> before;
        if (p.position) {
          std::int64_t v = 0;
          const char* end = p.position->data() + p.position->size();
          const auto [ptr, ec] = std::from_chars(p.position->data(), end, v);
          if (ec != std::errc{} || ptr != end || v < 1)
            co_return http::cursor_error_response(http::cursor_error::malformed);
          before = v;
        }
        const auto deadline = clock::now() + api.statement_timeout;
        const auto listed = co_await api.store.list_events(filter, before, p.limit + 1, deadline);
        if (listed.status)
          co_return store_failed(listed.status);
        std::vector<std::string> items;
        std::optional<std::string> next;
        for (const auto& e : listed.events) {
          if (items.size() == p.limit) {
            next = http::encode_cursor(std::to_string(listed.events[p.limit - 1].registry_version),
                                       kf.fingerprint);
            break;
          }
          items.push_back(routing::to_json(e));
        }
        co_return http::response::json(200, http::list_body(items, p.limit, next));
      },
      http::needs(http::access::read));
}

}  // namespace

void add_route_routes(http::router& routes, route_api api) {
  add_change_routes(routes, api);
  add_list_routes(routes, api);
}

}  // namespace sluice::api
