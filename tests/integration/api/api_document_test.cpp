// The API document without the services: an independent linter (@redocly/cli, from the npm
// registry) passes the checked-in document and fails a broken one; the response validator
// the integration test relies on reports every kind of mismatch; the docs page renders every
// operation and refers to nothing outside sluice.
#include "sluice/api/api_document.hpp"

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "api_document_test_support.hpp"
#include "sluice_test/env.hpp"

namespace sluice::test {
namespace {

using json = nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

command_result lint(const std::string& document) {
  const std::string modules = api_document_npm_modules();
  // Offline once installed: no telemetry, no update check.
  return run_command(
      "REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_COLOR=1 node '" + modules +
      "/@redocly/cli/bin/cli.js' lint --config '" SLUICE_API_DOCUMENT_DIR "/redocly.yaml' '" +
      document + "'");
}

TEST(api_document, the_linter_passes_the_checked_in_document) {
  const auto r = lint(SLUICE_API_DOCUMENT_DIR "/openapi.yaml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Your API description is valid"), std::string::npos) << r.output;
}

TEST(api_document, the_linter_fails_a_broken_document) {
  // Proof the lint can fail: an example that contradicts its schema, and an operation
  // without a summary.
  std::string text = read_file(SLUICE_API_DOCUMENT_DIR "/openapi.yaml");
  const std::string example = "example: {status: healthy, service: sluice}";
  const auto at = text.find(example);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, example.size(), "example: {status: healthy, service: other}");
  const std::string summary = "      summary: Liveness probe\n";
  const auto s = text.find(summary);
  ASSERT_NE(s, std::string::npos);
  text.erase(s, summary.size());
  temp_dir dir;
  const std::string path = dir.path() + "/openapi.yaml";
  std::ofstream(path) << text;
  const auto r = lint(path);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("no-invalid-media-type-examples"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("operation-summary"), std::string::npos) << r.output;
}

TEST(api_document, the_served_yaml_is_the_checked_in_file) {
  EXPECT_EQ(std::string(api::api_document_yaml()),
            read_file(SLUICE_API_DOCUMENT_DIR "/openapi.yaml"));
  const auto doc = json::parse(api::api_document_json());
  EXPECT_EQ(doc.at("openapi"), "3.1.0");
  EXPECT_GT(doc.at("paths").size(), 30u);
}

json exchange(const std::string& method, const std::string& target, int status,
              const std::string& content_type, const std::string& body) {
  return {{"method", method},
          {"target", target},
          {"status", status},
          {"contentType", content_type},
          {"body", body}};
}

// A 200 answer to a request that sent `request`.
json accepted_request(const std::string& method, const std::string& target,
                      const std::string& request, const std::string& body) {
  auto out = exchange(method, target, 200, "application/json", body);
  out["requestBody"] = request;
  return out;
}

TEST(api_document, the_validator_accepts_matching_responses) {
  temp_dir dir;
  const auto r = validate_exchanges(
      json::parse(api::api_document_json()),
      {exchange("GET", "/health", 200, "application/json",
                R"({"status":"healthy","service":"sluice"})"),
       exchange("HEAD", "/health/live", 200, "application/json", ""),
       exchange("DELETE", "/api/v1/services/a", 204, "", ""),
       exchange("GET", "/api/v1/services/a", 404, "application/json",
                R"({"error":{"code":"service_not_found","message":"no service named a"}})"),
       exchange("GET", "/proxy/svc/any/deep/path?x=1", 200, "text/plain", "from the target"),
       accepted_request("PUT", "/api/v1/queues/q", R"({"mode":"broadcast"})",
                        R"({"queue":"q","mode":"broadcast"})")},
      dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("0 mismatches"), std::string::npos) << r.output;
}

TEST(api_document, the_validator_reports_every_kind_of_mismatch) {
  temp_dir dir;
  const auto r =
      validate_exchanges(json::parse(api::api_document_json()),
                         {exchange("GET", "/health", 200, "application/json",
                                   R"({"status":"healthy","service":"sluice","extra":1})"),
                          exchange("GET", "/api/v1/services", 200, "application/json",
                                   R"({"items":[],"limit":"100"})"),
                          exchange("GET", "/health/live", 299, "application/json", "{}"),
                          exchange("GET", "/no/such/path", 200, "application/json", "{}"),
                          exchange("PATCH", "/health", 200, "application/json", "{}"),
                          exchange("GET", "/health", 200, "text/html", "<p>"),
                          exchange("GET", "/health/live", 200, "application/json", "not json"),
                          exchange("DELETE", "/api/v1/services/a", 204, "", "unexpected"),
                          exchange("GET", "/api/v1/services/a", 404, "application/json",
                                   R"({"error":{"code":"service_not_found"}})"),
                          accepted_request("PUT", "/api/v1/queues/q", R"({"mode":"fanout"})",
                                           R"({"queue":"q","mode":"queue"})")},
                         dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  for (const char* expected :
       {"GET /health -> 200: does not match", "(extra)", "/limit must be integer",
        "/ must have required property 'next'", "status 299 is not documented",
        "/no/such/path -> 200: the path is not documented", "PATCH /health is not documented",
        "Content-Type text/html is not one of", "the body is not JSON",
        "a body where the document has none", "must have required property 'message'",
        "the server accepted a request body the document refuses", "10 mismatches"}) {
    EXPECT_NE(r.output.find(expected), std::string::npos) << expected << "\n" << r.output;
  }
}

TEST(api_document, the_docs_page_renders_every_operation) {
  temp_dir dir;
  const std::string script = dir.path() + "/docs.js";
  const std::string document = dir.path() + "/openapi.json";
  std::ofstream(script) << api::docs_page_script();
  std::ofstream(document) << api::api_document_json();
  const auto r = run_command("node '" SLUICE_API_TEST_DIR "/render_docs.js' '" + script + "' '" +
                             document + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(", 0 problems"), std::string::npos) << r.output;
}

TEST(api_document, the_docs_page_refers_to_nothing_outside_sluice) {
  const std::string html(api::docs_page_html());
  const std::string script(api::docs_page_script());
  // No absolute URL anywhere: a CDN, a font or an analytics script would each be one.
  const std::regex absolute(R"((https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,})");
  EXPECT_FALSE(std::regex_search(html, absolute));
  EXPECT_FALSE(std::regex_search(script, absolute));
  const std::regex reference(R"re((src|href)="([^"]*)")re");
  std::vector<std::string> local;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), reference);
       it != std::sregex_iterator(); ++it) {
    const std::string target = (*it)[2];
    EXPECT_TRUE(target.starts_with("/") && !target.starts_with("//")) << target;
    local.push_back(target);
  }
  EXPECT_NE(std::find(local.begin(), local.end(), "/docs/docs.js"), local.end());
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_NE(script.find("fetch(\"/openapi.json\""), std::string::npos);
}

}  // namespace
}  // namespace sluice::test
