#include "sluice/worker/flavour_route.hpp"

#include "sluice/worker/flavour_consumer.hpp"
#include "sluice/worker/forward_outcome.hpp"
#include "sluice/worker/worker_service.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../fake_route_lookup.hpp"

namespace sluice::worker {
namespace {

using test::fake_route_lookup;
using test::key_of;
using test::run_awaitable;

const routing::route_key flavour_key = key_of("acme", "payments", "prod", "v1");

target_origin origin(std::string host, std::uint16_t port, std::string path) {
  target_origin o;
  o.host = std::move(host);
  o.port = port;
  o.base_path = std::move(path);
  return o;
}

flavour_route::pick choose(flavour_route& route, routing::route_lookup* lookup,
                           const rpc::header_list* headers = nullptr) {
  return run_awaitable(route.choose(lookup, headers));
}

std::string code_of(const flavour_route::pick& p) {
  return p.error ? p.error->error_code : "";
}

TEST(flavour_route, an_active_route_wins_over_the_flavour_url) {
  fake_route_lookup lookup;
  lookup.active(flavour_key, "http://10.1.0.5:8081/api");
  flavour_route route(flavour_key, origin("fallback", 80, ""), "");
  const auto p = choose(route, &lookup);
  EXPECT_FALSE(p.error);
  EXPECT_EQ(p.source, services::target_source::route);
  EXPECT_EQ(p.origin.host, "10.1.0.5");
  EXPECT_EQ(p.origin.port, 8081);
  EXPECT_EQ(p.origin.base_path, "/api");
  ASSERT_EQ(lookup.asked.size(), 1u);
  EXPECT_EQ(lookup.asked[0], flavour_key);
  // The request's path is appended to the route's url as to a flavour url.
  rpc::rpc_request r;
  r.method = "GET";
  r.target = "/orders?x=1";
  EXPECT_EQ(compose_request(r, p.origin).target, "/api/orders?x=1");
}

TEST(flavour_route, no_active_route_falls_back_to_the_url) {
  fake_route_lookup lookup;
  lookup.otherwise = {routing::resolve_result::negative_hit, std::nullopt, ""};
  flavour_route route(flavour_key, origin("fallback", 9000, "/v1"), "");
  const auto p = choose(route, &lookup);
  EXPECT_FALSE(p.error);
  EXPECT_EQ(p.source, services::target_source::url);
  EXPECT_EQ(p.origin.host, "fallback");
  EXPECT_EQ(p.origin.port, 9000);
}

TEST(flavour_route, no_active_route_and_no_url_is_502_no_route) {
  fake_route_lookup lookup;
  flavour_route route(flavour_key, std::nullopt, "");
  const auto p = choose(route, &lookup);
  ASSERT_TRUE(p.error);
  EXPECT_EQ(p.source, services::target_source::no_route);
  EXPECT_EQ(p.error->status, 502);
  EXPECT_EQ(p.error->error_code, "no_route");
  const auto body = nlohmann::json::parse(p.error->body);
  EXPECT_EQ(body["error"]["code"], "no_route");
  EXPECT_NE(p.error->error_message.find("acme/payments/prod/v1"), std::string::npos);
  EXPECT_EQ(outcome_of(*p.error), outcome::no_route);
}

TEST(flavour_route, without_a_registry_a_route_never_resolves) {
  flavour_route only_route(flavour_key, std::nullopt, "");
  const auto p = choose(only_route, nullptr);
  EXPECT_EQ(code_of(p), "no_route");
  EXPECT_EQ(p.error->status, 502);
  flavour_route with_url(flavour_key, origin("fallback", 80, ""), "");
  const auto q = choose(with_url, nullptr);
  EXPECT_FALSE(q.error);
  EXPECT_EQ(q.origin.host, "fallback");
}

TEST(flavour_route, registry_unavailable_uses_the_url_else_503_route_unavailable) {
  fake_route_lookup lookup;
  lookup.unavailable();
  flavour_route with_url(flavour_key, origin("fallback", 80, ""), "");
  const auto p = choose(with_url, &lookup);
  EXPECT_FALSE(p.error);
  EXPECT_EQ(p.source, services::target_source::url);
  flavour_route only_route(flavour_key, std::nullopt, "");
  const auto q = choose(only_route, &lookup);
  ASSERT_TRUE(q.error);
  EXPECT_EQ(q.source, services::target_source::unavailable);
  EXPECT_EQ(q.error->status, 503);
  EXPECT_EQ(q.error->error_code, "route_unavailable");
  EXPECT_NE(q.error->error_message.find("connection refused"), std::string::npos);
  EXPECT_EQ(outcome_of(*q.error), outcome::no_route);
}

TEST(flavour_route, a_stale_route_is_still_a_route) {
  fake_route_lookup lookup;
  lookup.answers[flavour_key] = {routing::resolve_result::stale, "http://old:1", ""};
  flavour_route route(flavour_key, std::nullopt, "");
  const auto p = choose(route, &lookup);
  EXPECT_FALSE(p.error);
  EXPECT_EQ(p.origin.host, "old");
}

TEST(flavour_route, headers_override_tenant_env_and_version) {
  fake_route_lookup lookup;
  lookup.active(key_of("globex", "payments", "staging", "v2"), "http://globex:1");
  flavour_route route(flavour_key, std::nullopt, "");
  const rpc::header_list headers{{"Accept", "*/*"},
                                 {"x-sluice-tenant", "globex"},
                                 {"X-Sluice-Env", "staging"},
                                 {"X-SLUICE-VERSION", "v2"},
                                 {"X-Sluice-Tenant", "ignored-second"}};
  const auto p = choose(route, &lookup, &headers);
  EXPECT_FALSE(p.error);
  EXPECT_EQ(p.origin.host, "globex");
  ASSERT_EQ(lookup.asked.size(), 1u);
  EXPECT_EQ(lookup.asked[0], key_of("globex", "payments", "staging", "v2"));
  // The flavour's own key is untouched: the next request without headers resolves it.
  const rpc::header_list none{{"Accept", "*/*"}};
  choose(route, &lookup, &none);
  ASSERT_EQ(lookup.asked.size(), 2u);
  EXPECT_EQ(lookup.asked[1], flavour_key);
}

TEST(flavour_route, one_override_keeps_the_other_parts) {
  fake_route_lookup lookup;
  flavour_route route(flavour_key, std::nullopt, "");
  const rpc::header_list headers{{"X-Sluice-Version", "v9"}};
  choose(route, &lookup, &headers);
  ASSERT_EQ(lookup.asked.size(), 1u);
  EXPECT_EQ(lookup.asked[0], key_of("acme", "payments", "prod", "v9"));
}

TEST(flavour_route, an_invalid_override_is_400_and_resolves_nothing) {
  fake_route_lookup lookup;
  flavour_route route(flavour_key, origin("fallback", 80, ""), "");
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"X-Sluice-Env", ""},
           {"X-Sluice-Env", "prod/eu"},
           {"X-Sluice-Tenant", ".hidden"},
           {"X-Sluice-Version", std::string(65, 'v')}}) {
    const rpc::header_list headers{{name, value}};
    const auto p = choose(route, &lookup, &headers);
    ASSERT_TRUE(p.error) << name << ": " << value;
    EXPECT_EQ(p.error->status, 400);
    EXPECT_EQ(p.error->error_code, "invalid_route_header");
    EXPECT_NE(p.error->error_message.find(name), std::string::npos);
    EXPECT_EQ(outcome_of(*p.error), outcome::invalid_route_header);
  }
  EXPECT_TRUE(lookup.asked.empty());
}

TEST(flavour_route, unrelated_x_sluice_headers_are_not_overrides) {
  std::optional<routing::route_key> out;
  const rpc::header_list headers{
      {"X-Sluice-Queue", "q"}, {"X-Sluice-Tenantx", "t"}, {"X-Sluice-", "t"}};
  EXPECT_FALSE(apply_route_overrides(headers, flavour_key, out));
  EXPECT_FALSE(out);
}

TEST(flavour_route, an_unusable_route_url_is_502_upstream_unavailable) {
  fake_route_lookup lookup;
  lookup.active(flavour_key, "https://secure.example/api");
  flavour_route route(flavour_key, origin("fallback", 80, ""), "");
  const auto p = choose(route, &lookup);
  ASSERT_TRUE(p.error);
  EXPECT_EQ(p.error->status, 502);
  EXPECT_EQ(p.error->error_code, "upstream_unavailable");
  EXPECT_NE(p.error->error_message.find("https://secure.example/api"), std::string::npos);
}

TEST(flavour_route, a_changed_route_url_is_parsed_again) {
  fake_route_lookup lookup;
  lookup.active(flavour_key, "http://a:1/x");
  flavour_route route(flavour_key, std::nullopt, "");
  EXPECT_EQ(choose(route, &lookup).origin.host, "a");
  EXPECT_EQ(choose(route, &lookup).origin.host, "a");
  lookup.active(flavour_key, "http://b:2/y");
  const auto p = choose(route, &lookup);
  EXPECT_EQ(p.origin.host, "b");
  EXPECT_EQ(p.origin.port, 2);
  EXPECT_EQ(p.origin.base_path, "/y");
}

TEST(flavour_route, an_unusable_fallback_answers_502_only_when_picked) {
  fake_route_lookup lookup;
  flavour_route route(flavour_key, target_origin{}, "the target URL x is unusable");
  const auto p = choose(route, &lookup);
  ASSERT_TRUE(p.error);
  EXPECT_EQ(p.error->status, 502);
  EXPECT_EQ(p.error->error_code, "upstream_unavailable");
  lookup.active(flavour_key, "http://ok:1");
  EXPECT_FALSE(choose(route, &lookup).error);
}

std::shared_ptr<const services::service> routed_service(bool batch) {
  services::service s;
  s.name = "payments";
  s.namespace_ = "shop";
  services::flavour with_url;
  with_url.name = "std";
  with_url.url = "http://10.0.0.1:8080/v1";
  with_url.route = key_of("acme", "payments", "prod", "v1");
  services::flavour only_route;
  only_route.name = "green";
  only_route.route = key_of("acme", "payments", "prod", "v2");
  services::flavour plain;
  plain.name = "blue";
  s.flavours = {with_url, only_route, plain};
  s.default_flavour = "std";
  if (batch)
    s.batch = services::batch_settings{10, std::chrono::milliseconds(50), "http://batch:9/b"};
  return std::make_shared<const services::service>(s);
}

TEST(consumer_config_route, a_route_flavour_keeps_its_key_and_whether_it_has_a_url) {
  services::service_defaults d;
  const auto configs = worker_service::configs_of(routed_service(false), d);
  ASSERT_EQ(configs.size(), 3u);
  EXPECT_EQ(configs[0].route, key_of("acme", "payments", "prod", "v1"));
  EXPECT_TRUE(configs[0].has_url);
  EXPECT_EQ(configs[0].target.host, "10.0.0.1");
  // A route without a url has no fallback: not the derived URL.
  EXPECT_EQ(configs[1].route, key_of("acme", "payments", "prod", "v2"));
  EXPECT_FALSE(configs[1].has_url);
  EXPECT_TRUE(configs[1].target.host.empty());
  EXPECT_TRUE(configs[1].target_error.empty());
  // Without a route: the derived URL as before.
  EXPECT_FALSE(configs[2].route);
  EXPECT_TRUE(configs[2].has_url);
  EXPECT_EQ(configs[2].target.host, "payments-blue.shop");
}

TEST(consumer_config_route, batch_mode_falls_back_to_the_batch_url) {
  services::service_defaults d;
  const auto configs = worker_service::configs_of(routed_service(true), d);
  ASSERT_EQ(configs.size(), 3u);
  EXPECT_TRUE(configs[1].route);
  EXPECT_EQ(configs[1].batch_url.host, "batch");
}

TEST(consumer_config_route, a_changed_route_restarts_the_consumer) {
  services::service_defaults d;
  const auto a = worker_service::configs_of(routed_service(false), d);
  auto changed = *routed_service(false);
  changed.flavours[0].route->env = "staging";
  const auto b = worker_service::configs_of(std::make_shared<const services::service>(changed), d);
  EXPECT_TRUE(a[0].same_as(worker_service::configs_of(routed_service(false), d)[0]));
  EXPECT_FALSE(a[0].same_as(b[0]));
  EXPECT_TRUE(a[1].same_as(b[1]));
}

}  // namespace
}  // namespace sluice::worker
