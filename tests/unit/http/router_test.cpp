#include "sluice/http/router.hpp"

#include <gtest/gtest.h>

namespace sluice::http {
namespace {

handler noop() {
  return [](request&) -> boost::asio::awaitable<response> { co_return response::json(200, "{}"); };
}

request make(std::string method, std::string path) {
  request r;
  r.method = std::move(method);
  r.path = std::move(path);
  return r;
}

TEST(router, matches_literal_and_captured_segments) {
  router r;
  r.add("GET", "/api/v1/queues/{queue}", "queue", noop());
  r.add("POST", "/api/v1/push", "push", noop());
  auto req = make("GET", "/api/v1/queues/orders");
  const auto m = r.find(req);
  ASSERT_EQ(m.outcome, router::match::kind::found);
  EXPECT_EQ(m.route_name, "queue");
  EXPECT_EQ(req.params.at("queue"), "orders");
  auto push = make("POST", "/api/v1/push");
  EXPECT_EQ(r.find(push).route_name, "push");
}

TEST(router, unknown_path_is_not_found_and_labelled_unmatched) {
  router r;
  r.add("GET", "/health", "/health", noop());
  for (const char* path : {"/", "/healthz", "/health/extra", "", "/api/v1/queues/"}) {
    auto req = make("GET", path);
    const auto m = r.find(req);
    EXPECT_EQ(m.outcome, router::match::kind::not_found) << path;
    EXPECT_EQ(m.route_name, "unmatched");
  }
}

TEST(router, wrong_method_lists_allowed_methods_sorted_and_unique) {
  router r;
  r.add("PUT", "/api/v1/queues/{queue}", "q", noop());
  r.add("GET", "/api/v1/queues/{queue}", "q", noop());
  r.add("GET", "/api/v1/queues/special", "special", noop());
  auto req = make("DELETE", "/api/v1/queues/special");
  const auto m = r.find(req);
  ASSERT_EQ(m.outcome, router::match::kind::method_not_allowed);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "PUT"}));
  EXPECT_EQ(m.route_name, "special") << "a 405 is counted under the route its path belongs to";
}

TEST(router, literal_segments_win_over_captures) {
  router r;
  r.add("GET", "/api/v1/queues/{queue}", "capture", noop());
  r.add("GET", "/api/v1/queues/special", "literal", noop());
  auto req = make("GET", "/api/v1/queues/special");
  EXPECT_EQ(r.find(req).route_name, "literal");
}

TEST(router, empty_segment_does_not_match_a_capture) {
  router r;
  r.add("GET", "/a/{x}/b", "x", noop());
  auto req = make("GET", "/a//b");
  EXPECT_EQ(r.find(req).outcome, router::match::kind::not_found);
}

TEST(router, tail_capture_takes_the_rest_of_the_path) {
  router r;
  r.add("GET", "/proxy/{service}/{path*}", "proxy", noop());
  auto deep = make("GET", "/proxy/billing/v1/invoices/42");
  ASSERT_EQ(r.find(deep).outcome, router::match::kind::found);
  EXPECT_EQ(deep.params.at("service"), "billing");
  EXPECT_EQ(deep.params.at("path"), "v1/invoices/42");
  auto empty = make("GET", "/proxy/billing");
  ASSERT_EQ(r.find(empty).outcome, router::match::kind::found);
  EXPECT_EQ(empty.params.at("path"), "");
}

}  // namespace
}  // namespace sluice::http
