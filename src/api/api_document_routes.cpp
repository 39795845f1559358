#include "sluice/api/api_document_routes.hpp"

#include "sluice/api/api_document.hpp"

#include <nlohmann/json.hpp>

namespace sluice::api {

namespace {

http::route_options open_route() {
  http::route_options o;
  o.required = http::access::open;
  return o;
}

// The page loads its script from sluice and fetches the document from sluice; the policy lets
// a browser load nothing else, so a page that reached for a CDN would break at once.
constexpr const char* docs_policy =
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void add_text(http::router& routes, const char* path, const char* content_type,
              std::string_view (*text)() noexcept, bool page = false) {
  routes.add(
      "GET", path, path,
      [content_type, text, page](http::request&) -> boost::asio::awaitable<http::response> {
        auto r = http::response::text(200, content_type, std::string(text()));
        if (page)
          r.with_header("Content-Security-Policy", docs_policy);
        co_return r;
      },
      open_route());
}

}  // namespace

void add_api_document_routes(http::router& routes) {
  // application/yaml is the media type RFC 9512 registered for YAML.
  add_text(routes, "/openapi.yaml", "application/yaml; charset=utf-8", api_document_yaml);
  add_text(routes, "/openapi.json", "application/json", api_document_json);
  add_text(routes, "/docs", "text/html; charset=utf-8", docs_page_html, true);
  add_text(routes, "/swagger/index.html", "text/html; charset=utf-8", docs_page_html, true);
  add_text(routes, "/docs/docs.js", "text/javascript; charset=utf-8", docs_page_script);
}

std::string route_table_json(const http::router& routes) {
  auto table = nlohmann::json::array();
  for (const auto& r : routes.list()) {
    table.push_back({{"method", r.method},
                     {"pattern", r.pattern},
                     {"name", r.name},
                     {"access", http::access_name(r.options->required)}});
  }
  return table.dump();
}

}  // namespace sluice::api
