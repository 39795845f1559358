// The API document's routes through the router: each answers the embedded text with its media
// type, every one is open (no token), and the route table lists each route with its access.
#include "sluice/api/api_document_routes.hpp"

#include "sluice/api/api_document.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::api {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;

class api_document_routes_test : public ::testing::Test {
 protected:
  api_document_routes_test() { add_api_document_routes(routes_); }

  http::response get(const std::string& path) {
    http::request req;
    req.method = "GET";
    req.path = path;
    req.target = path;
    const auto m = routes_.find(req);
    EXPECT_EQ(m.outcome, http::router::match::kind::found) << path;
    http::response out;
    if (!m.target)
      return out;
    EXPECT_EQ(m.options->required, http::access::open) << path;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { out = co_await (*m.target)(req); }, asio::detached);
    io_.restart();
    io_.run();
    return out;
  }

  asio::io_context io_;
  http::router routes_;
};

TEST_F(api_document_routes_test, serves_the_document_as_yaml_and_json) {
  const auto yaml = get("/openapi.yaml");
  EXPECT_EQ(yaml.status, 200);
  EXPECT_EQ(yaml.content_type, "application/yaml; charset=utf-8");
  EXPECT_EQ(yaml.body, api_document_yaml());
  EXPECT_TRUE(yaml.body.starts_with("openapi: 3.1.0\n"));
  const auto js = get("/openapi.json");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "application/json");
  const auto doc = json::parse(js.body);
  EXPECT_EQ(doc.at("openapi"), "3.1.0");
  // Converted in the document's order, and with YAML's types: a response code stays a key,
  // a number stays a number, a quoted number a string.
  EXPECT_EQ(nlohmann::ordered_json::parse(js.body).begin().key(), "openapi");
  EXPECT_TRUE(doc.at("paths").at("/health").at("get").at("responses").contains("200"));
  EXPECT_EQ(doc.at("components")
                .at("schemas")
                .at("PushRequest")
                .at("properties")
                .at("bufferMs")
                .at("maximum"),
            60000);
  EXPECT_EQ(doc.at("paths").at("/health").at("get").at("security"), json::array());
}

TEST_F(api_document_routes_test, serves_the_docs_page_at_both_paths) {
  for (const char* path : {"/docs", "/swagger/index.html"}) {
    const auto page = get(path);
    EXPECT_EQ(page.status, 200) << path;
    EXPECT_EQ(page.content_type, "text/html; charset=utf-8") << path;
    EXPECT_EQ(page.body, docs_page_html()) << path;
    ASSERT_EQ(page.headers.size(), 1u) << path;
    EXPECT_EQ(page.headers[0].first, "Content-Security-Policy");
    EXPECT_TRUE(page.headers[0].second.starts_with("default-src 'none'; script-src 'self';"));
  }
  const auto script = get("/docs/docs.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(script.body, docs_page_script());
}

TEST_F(api_document_routes_test, the_route_table_lists_every_route_with_its_access) {
  http::route_options admin_only;
  routes_.add(
      "POST", "/api/v1/things/{thing}", "/api/v1/things/{thing}",
      [](http::request&) -> asio::awaitable<http::response> { co_return http::response{}; },
      admin_only);
  const auto table = json::parse(route_table_json(routes_));
  ASSERT_EQ(table.size(), 6u);
  EXPECT_EQ(table[0], (json{{"method", "GET"},
                            {"pattern", "/openapi.yaml"},
                            {"name", "/openapi.yaml"},
                            {"access", "open"}}));
  EXPECT_EQ(table[5], (json{{"method", "POST"},
                            {"pattern", "/api/v1/things/{thing}"},
                            {"name", "/api/v1/things/{thing}"},
                            {"access", "admin"}}));
}

}  // namespace
}  // namespace sluice::api
