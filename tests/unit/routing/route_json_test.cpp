// The route and route event JSON (API answers, audit items, exchange messages), the stored
// route JSON read back, and the name and url validation edges.
#include <string>

#include "sluice/core/rfc3339.hpp"
#include "sluice/routing/route.hpp"
#include "sluice/routing/route_event_publisher.hpp"
#include "sluice/routing/route_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::routing {
namespace {

using namespace std::chrono_literals;

route sample() {
  route r;
  r.id = 7;
  r.key = {"acme", "billing", "prod", "v2"};
  r.url = "http://billing:8080/api";
  r.is_active = false;
  r.created_at = *parse_rfc3339("2026-12-01T10:00:00Z");
  r.updated_at = *parse_rfc3339("2026-12-01T10:00:01.25Z");
  r.registry_version = 12;
  return r;
}

TEST(route_json, route_object_has_the_seed_fields_in_order) {
  EXPECT_EQ(to_json(sample()),
            R"({"id":7,"tenant":"acme","service":"billing","env":"prod","version":"v2",)"
            R"("url":"http://billing:8080/api","is_active":false,)"
            R"("created_at":"2026-12-01T10:00:00Z","updated_at":"2026-12-01T10:00:01.25Z",)"
            R"("registry_version":12})");
}

TEST(route_json, event_carries_before_and_after_or_null) {
  route_event e;
  e.id = 3;
  e.registry_version = 12;
  e.action = "deactivated";
  e.key = sample().key;
  e.before = sample();
  e.before->is_active = true;
  e.after = sample();
  e.actor = "10.1.2.3";
  e.created_at = sample().updated_at;
  const auto j = nlohmann::ordered_json::parse(to_json(e));
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items())
    keys.push_back(k);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"id", "registry_version", "action", "tenant", "service",
                                      "env", "version", "before", "after", "actor", "created_at"}));
  EXPECT_EQ(j["before"]["is_active"], true);
  EXPECT_EQ(j["after"].dump(), to_json(sample()));
  EXPECT_EQ(j["created_at"], "2026-12-01T10:00:01.25Z");

  e.action = "created";
  e.before.reset();
  EXPECT_TRUE(nlohmann::json::parse(to_json(e))["before"].is_null());
  e.action = "deleted";
  e.before = sample();
  e.after.reset();
  EXPECT_TRUE(nlohmann::json::parse(to_json(e))["after"].is_null());
}

TEST(route_json, stored_json_reads_back_in_any_key_order_and_fraction) {
  EXPECT_EQ(parse_route_json(to_json(sample())), sample());
  // As PostgreSQL's jsonb hands it back: keys sorted, times with six fraction digits.
  const auto stored = parse_route_json(
      R"({"env":"prod","id":7,"url":"http://billing:8080/api","tenant":"acme",)"
      R"("service":"billing","version":"v2","is_active":false,)"
      R"("created_at":"2026-12-01T10:00:00.000000Z","updated_at":"2026-12-01T10:00:01.250000Z",)"
      R"("registry_version":12})");
  EXPECT_EQ(stored, sample());
}

TEST(route_json, stored_json_missing_or_mistyped_fields_does_not_read) {
  auto without = [](const char* field) {
    auto j = nlohmann::json::parse(to_json(sample()));
    j.erase(field);
    return parse_route_json(j.dump());
  };
  for (const char* f : {"id", "tenant", "service", "env", "version", "url", "is_active",
                        "created_at", "updated_at", "registry_version"})
    EXPECT_FALSE(without(f)) << f;
  auto j = nlohmann::json::parse(to_json(sample()));
  j["is_active"] = "false";
  EXPECT_FALSE(parse_route_json(j.dump()));
  j = nlohmann::json::parse(to_json(sample()));
  j["created_at"] = "yesterday";
  EXPECT_FALSE(parse_route_json(j.dump()));
  EXPECT_FALSE(parse_route_json("null"));
  EXPECT_FALSE(parse_route_json("{"));
}

TEST(route_json, the_exchange_message_is_persistent_json_named_by_version) {
  route_event e;
  e.registry_version = 42;
  e.action = "updated";
  e.key = sample().key;
  e.after = sample();
  e.created_at = sample().created_at;
  const auto m = route_event_message(e);
  EXPECT_EQ(m.exchange, "sluice.route-events");
  EXPECT_EQ(m.routing_key, "updated");
  EXPECT_EQ(m.body, to_json(e));
  EXPECT_EQ(m.properties.content_type, std::optional<std::string>("application/json"));
  EXPECT_EQ(m.properties.delivery_mode, std::optional<std::uint8_t>(2));
  EXPECT_EQ(m.properties.message_id, std::optional<std::string>("route-event-42"));
  EXPECT_EQ(m.properties.type, std::optional<std::string>("route.updated"));
  EXPECT_EQ(m.properties.timestamp, std::optional<std::uint64_t>(1796119200));
  EXPECT_FALSE(m.mandatory);
}

TEST(route_validation, names) {
  EXPECT_FALSE(name_problem("a"));
  EXPECT_FALSE(name_problem("Acme_1.v-2"));
  EXPECT_FALSE(name_problem(std::string(64, 'x')));
  EXPECT_TRUE(name_problem(std::string(65, 'x')));
  EXPECT_TRUE(name_problem(""));
  EXPECT_TRUE(name_problem(".hidden"));
  EXPECT_FALSE(name_problem("v1."));
  for (const char* bad : {"a/b", "a b", "a%20", "caf\xc3\xa9", "a:b", "a\tb"})
    EXPECT_TRUE(name_problem(bad)) << bad;
}

TEST(route_validation, urls) {
  for (const char* ok : {"http://h", "https://h/", "http://h:8080/x?y=1#z", "http://user@host/",
                         "http://10.0.0.1:80", "http://[::1]:8080/"})
    EXPECT_FALSE(url_problem(ok)) << ok;
  for (const char* bad : {"", "ftp://h/", "h/x", "/relative", "http://", "http:///x", "http://:80/",
                          "http://user@/", "http://h x/", "http://h/\x01", "HTTP://h/"})
    EXPECT_TRUE(url_problem(bad)) << bad;
  const std::string prefix = "http://h/";
  EXPECT_FALSE(url_problem(prefix + std::string(2048 - prefix.size(), 'a')));
  EXPECT_TRUE(url_problem(prefix + std::string(2049 - prefix.size(), 'a')));
}

}  // namespace
}  // namespace sluice::routing
