#include "sluice/delivery/delivery_request.hpp"
#include "sluice/delivery/subscription_json.hpp"
#include "sluice/delivery/subscription_target.hpp"

#include <gtest/gtest.h>

#include "../fake_route_lookup.hpp"

namespace sluice::delivery {
namespace {

using test::fake_route_lookup;
using test::key_of;
using test::run_awaitable;

subscription parsed(std::string_view body, std::string_view name = "billing") {
  auto r = parse_subscription("orders", name, body, 16);
  if (auto* e = std::get_if<subscription_error>(&r))
    ADD_FAILURE() << body << ": " << e->field << " " << e->message;
  return std::holds_alternative<subscription>(r) ? std::get<subscription>(r) : subscription{};
}

subscription_error refused(std::string_view body, std::string_view name = "billing") {
  auto r = parse_subscription("orders", name, body, 16);
  if (std::holds_alternative<subscription>(r)) {
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  return std::get<subscription_error>(r);
}

TEST(subscription_route, the_service_defaults_to_the_subscription_name) {
  const auto s = parsed(R"({"route":{"tenant":"acme","env":"prod","version":"v1"}})");
  EXPECT_EQ(s.route, key_of("acme", "billing", "prod", "v1"));
  EXPECT_TRUE(s.url.empty());
  const auto t =
      parsed(R"({"url":"http://h:1/in","route":{"tenant":"acme","service":"ledger","env":"prod",
                 "version":"v1"}})");
  EXPECT_EQ(t.route, key_of("acme", "ledger", "prod", "v1"));
  EXPECT_EQ(t.address.host, "h");
}

TEST(subscription_route, url_or_route_is_required) {
  EXPECT_EQ(refused(R"({"method":"POST"})").field, "url");
  EXPECT_EQ(refused(R"({"url":null})").field, "url");
  EXPECT_EQ(refused(R"({"route":null})").field, "url");
}

TEST(subscription_route, validation_names_the_field) {
  EXPECT_EQ(refused(R"({"route":{"tenant":"acme","env":"prod eu","version":"v1"}})").field,
            "route.env");
  EXPECT_EQ(refused(R"({"route":{"env":"prod","version":"v1"}})").field, "route.tenant");
  EXPECT_EQ(refused(R"({"route":{"tenant":"a","env":"p","version":"v","extra":1}})").field,
            "route.extra");
  EXPECT_EQ(refused(R"({"route":{"tenant":"a","service":".x","env":"p","version":"v"}})").field,
            "route.service");
  EXPECT_EQ(refused(R"({"route":"a/b/c"})").field, "route");
  // A subscription name too long for a route's service needs an explicit one.
  const std::string long_name(70, 'n');
  EXPECT_EQ(refused(R"({"route":{"tenant":"a","env":"p","version":"v"}})", long_name).field,
            "route.service");
  EXPECT_EQ(
      parsed(R"({"route":{"tenant":"a","service":"s","env":"p","version":"v"}})", long_name).route,
      key_of("a", "s", "p", "v"));
}

TEST(subscription_route, round_trips_through_the_stored_json_and_shows_in_the_api_view) {
  const auto s = parsed(R"({"route":{"tenant":"acme","env":"prod","version":"v1"}})");
  const auto stored = to_stored_json(s);
  auto back = parsed(stored);
  EXPECT_TRUE(back.same_as(s));
  EXPECT_EQ(back.route, s.route);
  const auto api = to_api_json(s);
  EXPECT_TRUE(api["url"].is_null());
  EXPECT_EQ(api["route"]["tenant"], "acme");
  EXPECT_EQ(api["route"]["service"], "billing");
  EXPECT_EQ(api["route"]["env"], "prod");
  EXPECT_EQ(api["route"]["version"], "v1");
  const auto plain = parsed(R"({"url":"http://h:1/in"})");
  EXPECT_TRUE(to_api_json(plain)["route"].is_null());
  EXPECT_TRUE(parsed(to_stored_json(plain)).same_as(plain));
}

TEST(subscription_route, a_changed_route_is_a_changed_spec) {
  auto a = parsed(R"({"route":{"tenant":"acme","env":"prod","version":"v1"}})");
  auto b = a;
  EXPECT_TRUE(a.same_as(b));
  b.route->version = "v2";
  EXPECT_FALSE(a.same_as(b));
}

subscription_target choose(routing::route_lookup* lookup, const subscription& s,
                           bool batch = false) {
  return run_awaitable(choose_subscription_target(lookup, s, batch));
}

TEST(subscription_target, an_active_route_wins_over_the_url) {
  fake_route_lookup lookup;
  const auto s =
      parsed(R"({"url":"http://fallback:1/in","route":{"tenant":"a","env":"p","version":"v"}})");
  lookup.active(*s.route, "http://routed:8080/hook?token=x");
  const auto t = choose(&lookup, s);
  EXPECT_TRUE(t.error.empty());
  EXPECT_EQ(t.source, services::target_source::route);
  EXPECT_EQ(t.address.host, "routed");
  EXPECT_EQ(t.address.port, 8080);
  EXPECT_EQ(t.address.target, "/hook?token=x");
  // The delivery goes there.
  incoming_message m;
  const auto r = compose_delivery(s, {}, m, 0, 1, &t.address);
  EXPECT_EQ(r.host, "routed");
  EXPECT_EQ(r.target, "/hook?token=x");
}

TEST(subscription_target, no_active_route_takes_the_url) {
  fake_route_lookup lookup;
  const auto s =
      parsed(R"({"url":"http://fallback:1/in","route":{"tenant":"a","env":"p","version":"v"}})");
  const auto t = choose(&lookup, s);
  EXPECT_TRUE(t.error.empty());
  EXPECT_EQ(t.source, services::target_source::url);
  EXPECT_EQ(t.address.host, "fallback");
  EXPECT_EQ(t.address.target, "/in");
}

TEST(subscription_target, no_active_route_and_no_url_is_a_no_route_error) {
  fake_route_lookup lookup;
  const auto s = parsed(R"({"route":{"tenant":"a","env":"p","version":"v"}})");
  const auto t = choose(&lookup, s);
  EXPECT_EQ(t.source, services::target_source::no_route);
  EXPECT_TRUE(t.error.starts_with("no_route: ")) << t.error;
  EXPECT_NE(t.error.find("a/billing/p/v"), std::string::npos);
  const auto none = choose(nullptr, s);
  EXPECT_TRUE(none.error.starts_with("no_route: ")) << none.error;
}

TEST(subscription_target, unavailable_takes_the_url_else_route_unavailable) {
  fake_route_lookup lookup;
  lookup.unavailable();
  const auto only = parsed(R"({"route":{"tenant":"a","env":"p","version":"v"}})");
  const auto t = choose(&lookup, only);
  EXPECT_EQ(t.source, services::target_source::unavailable);
  EXPECT_TRUE(t.error.starts_with("route_unavailable: ")) << t.error;
  const auto with_url =
      parsed(R"({"url":"http://fallback:1/in","route":{"tenant":"a","env":"p","version":"v"}})");
  EXPECT_TRUE(choose(&lookup, with_url).error.empty());
}

TEST(subscription_target, an_unusable_route_url_is_an_error) {
  fake_route_lookup lookup;
  const auto s = parsed(R"({"route":{"tenant":"a","env":"p","version":"v"}})");
  lookup.active(*s.route, "https://secure/hook");
  const auto t = choose(&lookup, s);
  EXPECT_FALSE(t.error.empty());
  EXPECT_NE(t.error.find("https://secure/hook"), std::string::npos);
}

TEST(subscription_target, batch_mode_routes_the_batch_and_falls_back_to_the_batch_url) {
  fake_route_lookup lookup;
  const auto s = parsed(
      R"({"route":{"tenant":"a","env":"p","version":"v"},"batch":{"url":"http://batch:2/b"}})");
  auto t = choose(&lookup, s, true);
  EXPECT_TRUE(t.error.empty());
  EXPECT_EQ(t.address.host, "batch");
  lookup.active(*s.route, "http://routed:3/many");
  t = choose(&lookup, s, true);
  EXPECT_EQ(t.address.host, "routed");
  const auto r = compose_batch(s, {}, "[]", 0, "batch_1", 0, &t.address);
  EXPECT_EQ(r.host, "routed");
  EXPECT_EQ(r.target, "/many");
  ASSERT_EQ(lookup.asked.size(), 2u);
}

}  // namespace
}  // namespace sluice::delivery
