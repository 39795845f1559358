#include "sluice/api/route_resolve_routes.hpp"

#include <array>
#include <cstdio>
#include <string>

#include "sluice/http/caller_checks.hpp"

namespace sluice::api {
namespace asio = boost::asio;

namespace {

// {"url":"…"} without building a JSON document: this is the hot answer (stored URLs hold no
// control characters, but a quote or a backslash is escaped).
std::string url_body(const std::string& url) {
  std::string out;
  out.reserve(url.size() + 12);
  out += R"({"url":")";
  for (const char c : url) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  out += "\"}";
  return out;
}

}  // namespace

void add_route_resolve_routes(http::router& routes, routing::route_lookup& lookup,
                              int retry_after_seconds) {
  routes.add(
      "GET", "/api/v1/routes/resolve", "/api/v1/routes/resolve",
      [&lookup, retry_after_seconds](http::request& req) -> asio::awaitable<http::response> {
        routing::route_key key;
        const std::array<std::pair<const char*, std::string*>, 4> fields{{
            {"tenant", &key.tenant},
            {"service", &key.service},
            {"env", &key.env},
            {"version", &key.version},
        }};
        for (const auto& [name, slot] : fields) {
          auto value = req.query_param(name);
          if (!value) {
            co_return http::error_response(400, "invalid_request",
                                           std::string(name) + " is required");
          }
          if (const auto problem = routing::name_problem(*value)) {
            co_return http::error_response(400, "invalid_request",
                                           std::string(name) + " " + *problem);
          }
          *slot = std::move(*value);
        }
        if (auto refused = http::refuse_uncovered(req, key.service))
          co_return std::move(*refused);
        const auto out = co_await lookup.resolve(key);
        if (out.url)
          co_return http::response::json(200, url_body(*out.url));
        if (out.result == routing::resolve_result::unavailable) {
          co_return http::overloaded_response(
              503, "route_registry_unavailable",
              "the route registry cannot answer now (" + out.error + "); retry later",
              retry_after_seconds);
        }
        co_return http::error_response(404, "route_not_found",
                                       "no active route for " + routing::to_string(key));
      },
      http::needs(http::access::read));
}

}  // namespace sluice::api
