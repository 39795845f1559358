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

void add_text(http::router& routes, const char* path, const char* content_type,
              std::string_view (*text)() noexcept) {
  routes.add(
      "GET", path, path,
      [content_type, text](http::request&) -> boost::asio::awaitable<http::response> {
        co_return http::response::text(200, content_type, std::string(text()));
      },
      open_route());
}

}  // namespace

void add_api_document_routes(http::router& routes) {
  // application/yaml is the media type RFC 9512 registered for YAML.
  add_text(routes, "/openapi.yaml", "application/yaml; charset=utf-8", api_document_yaml);
  add_text(routes, "/openapi.json", "application/json", api_document_json);
  add_text(routes, "/docs", "text/html; charset=utf-8", docs_page_html);
  add_text(routes, "/swagger/index.html", "text/html; charset=utf-8", docs_page_html);
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
