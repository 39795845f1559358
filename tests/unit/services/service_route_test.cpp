#include "sluice/services/route_target.hpp"
#include "sluice/services/service_json.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../fake_route_lookup.hpp"

namespace sluice::services {
namespace {

using test::key_of;

service parsed(std::string_view json, std::string_view name = "payments") {
  auto r = parse_service(name, json, service_defaults{});
  if (auto* e = std::get_if<parse_error>(&r))
    ADD_FAILURE() << json << ": " << e->field << " " << e->message;
  return std::holds_alternative<service>(r) ? std::get<service>(r) : service{};
}

parse_error refused(std::string_view json, std::string_view name = "payments") {
  auto r = parse_service(name, json, service_defaults{});
  if (std::holds_alternative<service>(r)) {
    ADD_FAILURE() << "accepted: " << json;
    return {};
  }
  return std::get<parse_error>(r);
}

TEST(service_route, a_flavour_route_takes_the_service_name_as_its_service) {
  const auto s = parsed(R"({"flavours":[
      {"name":"std","url":"http://a:1"},
      {"name":"green","route":{"tenant":"acme","env":"prod","version":"v2.1"}},
      {"name":"blue","url":"http://b:2","route":{"tenant":"acme","env":"prod","version":"v3"}}]})");
  ASSERT_EQ(s.flavours.size(), 3u);
  EXPECT_FALSE(s.flavours[0].route);
  EXPECT_EQ(s.flavours[1].route, key_of("acme", "payments", "prod", "v2.1"));
  EXPECT_TRUE(s.flavours[1].url.empty());
  EXPECT_EQ(s.flavours[2].route, key_of("acme", "payments", "prod", "v3"));
  EXPECT_EQ(s.flavours[2].url, "http://b:2");
}

TEST(service_route, round_trips_through_the_stored_json) {
  const auto s = parsed(R"({"flavours":[
      {"name":"green","route":{"tenant":"acme","env":"prod","version":"v2"}},
      {"name":"std"}]})");
  const std::string text = to_json(s);
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["flavours"][0]["route"],
            nlohmann::json::parse(R"({"tenant":"acme","env":"prod","version":"v2"})"));
  EXPECT_FALSE(j["flavours"][0].contains("url"));
  EXPECT_FALSE(j["flavours"][1].contains("route"));
  auto body = j;
  body.erase("name");
  EXPECT_EQ(parsed(body.dump()), s);
}

TEST(service_route, route_null_is_no_route) {
  const auto s = parsed(R"({"flavours":[{"name":"std","route":null}]})");
  EXPECT_FALSE(s.flavours[0].route);
}

TEST(service_route, a_route_without_url_has_no_derived_url) {
  const auto s = parsed(R"({"flavours":[
      {"name":"green","route":{"tenant":"acme","env":"prod","version":"v2"}},{"name":"std"}]})");
  EXPECT_EQ(target_base_url(s, s.flavours[0], service_defaults{}), "");
  EXPECT_EQ(target_base_url(s, s.flavours[1], service_defaults{}), "http://payments-std.default");
}

TEST(service_route, validation_names_the_field) {
  const auto route = [](std::string_view inner) {
    return std::string(R"({"flavours":[{"name":"std"},{"name":"green","route":)") +
           std::string(inner) + "}]}";
  };
  EXPECT_EQ(refused(route(R"({"tenant":"acme","env":"prod/eu","version":"v1"})")).field,
            "flavours[1].route.env");
  EXPECT_EQ(refused(route(R"({"tenant":"","env":"prod","version":"v1"})")).field,
            "flavours[1].route.tenant");
  EXPECT_EQ(refused(route(R"({"tenant":"acme","env":"prod","version":".v1"})")).field,
            "flavours[1].route.version");
  EXPECT_EQ(refused(route(R"({"tenant":"acme","env":"prod"})")).field, "flavours[1].route.version");
  EXPECT_EQ(refused(route(R"({"tenant":"acme","env":"prod","version":1})")).field,
            "flavours[1].route.version");
  EXPECT_EQ(refused(route(R"({"tenant":"acme","env":"prod","version":"v1","service":"x"})")).field,
            "flavours[1].route.service");
  EXPECT_EQ(refused(route(R"("acme/prod/v1")")).field, "flavours[1].route");
  const auto long_tenant = std::string(65, 't');
  EXPECT_EQ(
      refused(route(R"({"tenant":")" + long_tenant + R"(","env":"prod","version":"v1"})")).field,
      "flavours[1].route.tenant");
}

TEST(service_route, a_service_name_that_is_no_route_name_is_refused_with_a_route) {
  const std::string name(70, 's');
  const auto e = refused(
      R"({"flavours":[{"name":"std","route":{"tenant":"a","env":"p","version":"v"}}]})", name);
  EXPECT_EQ(e.field, "flavours[0].route");
  // Without a route the name is fine (services allow 100 bytes).
  EXPECT_EQ(parsed(R"({"flavours":[{"name":"std"}]})", name).name, name);
}

routing::resolve_outcome outcome(routing::resolve_result r, std::optional<std::string> url) {
  return routing::resolve_outcome{r, std::move(url), ""};
}

TEST(choose_target, an_active_route_wins) {
  using routing::resolve_result;
  for (const auto r : {resolve_result::hit, resolve_result::miss, resolve_result::stale}) {
    EXPECT_EQ(choose_target(outcome(r, "http://x"), true), target_source::route);
    EXPECT_EQ(choose_target(outcome(r, "http://x"), false), target_source::route);
  }
}

TEST(choose_target, no_active_route_takes_the_url_else_no_route) {
  using routing::resolve_result;
  for (const auto r : {resolve_result::miss, resolve_result::negative_hit, resolve_result::hit}) {
    EXPECT_EQ(choose_target(outcome(r, std::nullopt), true), target_source::url);
    EXPECT_EQ(choose_target(outcome(r, std::nullopt), false), target_source::no_route);
  }
}

TEST(choose_target, unavailable_takes_the_url_else_unavailable) {
  const auto o = outcome(routing::resolve_result::unavailable, std::nullopt);
  EXPECT_EQ(choose_target(o, true), target_source::url);
  EXPECT_EQ(choose_target(o, false), target_source::unavailable);
}

TEST(resolve_route, without_a_lookup_is_a_miss_with_no_url) {
  const auto o = test::run_awaitable(resolve_route(nullptr, key_of("a", "b", "c", "d")));
  EXPECT_EQ(o.result, routing::resolve_result::miss);
  EXPECT_FALSE(o.url);
  test::fake_route_lookup lookup;
  lookup.active(key_of("a", "b", "c", "d"), "http://r");
  const auto p = test::run_awaitable(resolve_route(&lookup, key_of("a", "b", "c", "d")));
  EXPECT_EQ(p.url, "http://r");
}

}  // namespace
}  // namespace sluice::services
