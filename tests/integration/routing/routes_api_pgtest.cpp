// The route registry's API through the real binary on a real PostgreSQL: every endpoint's
// answer, validation, conflict and not-found, list pages, the audit log matching the changes
// one for one, and 503 while PostgreSQL is away.
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/eventually.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

const std::map<std::string, std::string> json_type{{"Content-Type", "application/json"}};

std::string key_body(const std::string& service, const std::string& version = "v1") {
  return R"({"tenant":"acme","service":")" + service + R"(","env":"prod","version":")" + version +
         R"("})";
}

std::string route_body(const std::string& service, const std::string& url,
                       const std::string& version = "v1") {
  return R"({"tenant":"acme","service":")" + service + R"(","env":"prod","version":")" + version +
         R"(","url":")" + url + R"("})";
}

std::string key_query(const std::string& service, const std::string& version = "v1") {
  return "tenant=acme&service=" + service + "&env=prod&version=" + version;
}

std::vector<std::string> keys_of(const json& j) {
  std::vector<std::string> out;
  for (const auto& [k, v] : j.items())
    out.push_back(k);
  return out;
}

class routes_api_test : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir dir_;

  sluice_process::env_map env(sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("FILE_BUFFER_DIR", dir_.path() + "/buffer");
    return extra;
  }

  // The API answers once the schema is migrated.
  static void wait_schema(const sluice_process& s) {
    ASSERT_TRUE(
        eventually([&] { return http_call(s.port(), "GET", "/api/v1/routes").status == 200; }, 20s))
        << s.log();
  }

  static http_result call(const sluice_process& s, const std::string& method,
                          const std::string& target, const std::string& body = {}) {
    return http_call(s.port(), method, target, body, json_type);
  }

  static void expect_invalid(const http_result& r, const std::string& field,
                             const std::string& what) {
    EXPECT_EQ(r.status, 400) << what << ": " << r.body;
    if (r.status != 400)
      return;
    const auto j = r.json();
    EXPECT_EQ(j["error"]["field"], field) << what << ": " << r.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(field), std::string::npos) << r.body;
    EXPECT_TRUE(j["error"]["code"].is_string());
  }
};

TEST_F(routes_api_test, each_change_answers_in_the_seed_shape) {
  sluice_process a(env());
  wait_schema(a);

  const auto created = call(a, "POST", "/api/v1/routes", route_body("billing", "http://b:8080/x"));
  ASSERT_EQ(created.status, 201) << created.body;
  auto j = created.json();
  EXPECT_EQ(keys_of(j), (std::vector<std::string>{"message", "route"}));
  EXPECT_EQ(j["message"], "Route created successfully");
  const json r = j["route"];
  EXPECT_EQ(keys_of(r),
            (std::vector<std::string>{"created_at", "env", "id", "is_active", "registry_version",
                                      "service", "tenant", "updated_at", "url", "version"}));
  EXPECT_TRUE(r["id"].is_number_integer());
  EXPECT_EQ(r["tenant"], "acme");
  EXPECT_EQ(r["service"], "billing");
  EXPECT_EQ(r["env"], "prod");
  EXPECT_EQ(r["version"], "v1");
  EXPECT_EQ(r["url"], "http://b:8080/x");
  EXPECT_EQ(r["is_active"], true);
  EXPECT_EQ(r["registry_version"], 1);
  EXPECT_EQ(r["created_at"].get<std::string>().back(), 'Z');
  EXPECT_EQ(r["created_at"], r["updated_at"]);

  const auto again = call(a, "POST", "/api/v1/routes", route_body("billing", "http://c/"));
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(again.json()["error"]["code"], "route_exists");

  const auto updated = call(a, "PUT", "/api/v1/routes", route_body("billing", "http://c/"));
  ASSERT_EQ(updated.status, 200) << updated.body;
  j = updated.json();
  EXPECT_EQ(j["message"], "Route updated successfully");
  EXPECT_EQ(j["route"]["url"], "http://c/");
  EXPECT_EQ(j["route"]["id"], r["id"]);
  EXPECT_EQ(j["route"]["registry_version"], 2);

  const auto off = call(a, "POST", "/api/v1/routes/deactivate", key_body("billing"));
  ASSERT_EQ(off.status, 200) << off.body;
  j = off.json();
  EXPECT_EQ(j["message"], "Route deactivated successfully");
  EXPECT_EQ(j["route"]["is_active"], false);
  EXPECT_EQ(j["route"]["url"], "http://c/");

  const auto on = call(a, "POST", "/api/v1/routes/activate", key_body("billing"));
  ASSERT_EQ(on.status, 200) << on.body;
  j = on.json();
  EXPECT_EQ(j["message"], "Route activated successfully");
  EXPECT_EQ(j["route"]["is_active"], true);
  EXPECT_EQ(j["route"]["registry_version"], 4);
  // Activating an active route changes nothing and says so with the same answer.
  const auto on_again = call(a, "POST", "/api/v1/routes/activate", key_body("billing"));
  EXPECT_EQ(on_again.status, 200);
  EXPECT_EQ(on_again.json()["route"]["registry_version"], 4);

  const auto removed = call(a, "DELETE", "/api/v1/routes?" + key_query("billing"));
  EXPECT_EQ(removed.status, 204) << removed.body;
  EXPECT_TRUE(removed.body.empty());

  for (const auto& [method, target, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"DELETE", "/api/v1/routes?" + key_query("billing"), ""},
           {"PUT", "/api/v1/routes", route_body("billing", "http://d/")},
           {"POST", "/api/v1/routes/activate", key_body("billing")},
           {"POST", "/api/v1/routes/deactivate", key_body("billing")}}) {
    const auto missing = call(a, method, target, body);
    EXPECT_EQ(missing.status, 404) << method << " " << target << " " << missing.body;
    EXPECT_EQ(missing.json()["error"]["code"], "route_not_found") << missing.body;
  }

  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT version FROM sluice_route_registry"), "5");
  EXPECT_EQ(pg.scalar("SELECT string_agg(action, ',' ORDER BY registry_version) FROM "
                      "sluice_route_events"),
            "created,updated,deactivated,activated,deleted");
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_routes"), "0");
}

TEST_F(routes_api_test, refuses_bad_requests_naming_the_field) {
  sluice_process a(env());
  wait_schema(a);
  const std::string ok = route_body("billing", "http://b/");

  expect_invalid(call(a, "POST", "/api/v1/routes",
                      R"({"tenant":"acme","service":"billing","env":"prod","url":"http://b/"})"),
                 "version", "missing version");
  expect_invalid(call(a, "POST", "/api/v1/routes", key_body("billing")), "url", "missing url");
  expect_invalid(
      call(
          a, "POST", "/api/v1/routes",
          R"({"tenant":"acme","service":"billing","env":"prod","version":"v1","url":"http://b/","weight":3})"),
      "weight", "unknown field");
  expect_invalid(call(a, "POST", "/api/v1/routes", route_body("bill ing", "http://b/")), "service",
                 "space in a name");
  expect_invalid(call(a, "POST", "/api/v1/routes", route_body(std::string(65, 'a'), "http://b/")),
                 "service", "name too long");
  expect_invalid(call(a, "POST", "/api/v1/routes", route_body(".hidden", "http://b/")), "service",
                 "leading dot");
  expect_invalid(call(a, "POST", "/api/v1/routes", route_body("billing", "ftp://b/")), "url",
                 "ftp url");
  expect_invalid(call(a, "POST", "/api/v1/routes", route_body("billing", "/relative")), "url",
                 "relative url");
  expect_invalid(
      call(a, "POST", "/api/v1/routes",
           R"({"tenant":7,"service":"billing","env":"prod","version":"v1","url":"http://b/"})"),
      "tenant", "number for a name");
  expect_invalid(call(a, "POST", "/api/v1/routes", "{not json"), "body", "invalid JSON");
  expect_invalid(call(a, "POST", "/api/v1/routes", "[]"), "body", "not an object");
  expect_invalid(call(a, "POST", "/api/v1/routes/activate", ok), "url",
                 "url on activate (unknown there)");
  expect_invalid(call(a, "PUT", "/api/v1/routes", key_body("billing")), "url", "PUT without url");
  expect_invalid(call(a, "DELETE", "/api/v1/routes?tenant=acme&service=billing&env=prod"),
                 "version", "DELETE without version");
  expect_invalid(call(a, "GET", "/api/v1/routes?active=yes"), "active", "active=yes");
  expect_invalid(call(a, "GET", "/api/v1/routes?tenant=a%20b"), "tenant", "bad tenant filter");
  expect_invalid(call(a, "GET", "/api/v1/routes/events?start_time=yesterday"), "start_time",
                 "bad start_time");
  expect_invalid(call(a, "GET", "/api/v1/routes/events?end_time=2026-13-01T00:00:00Z"), "end_time",
                 "bad end_time");
  expect_invalid(call(a, "GET", "/api/v1/routes/events?action=renamed"), "action", "bad action");

  const auto form = http_call(a.port(), "POST", "/api/v1/routes", ok,
                              {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(form.status, 415) << form.body;
  EXPECT_EQ(call(a, "GET", "/api/v1/routes?cursor=garbage").status, 400);

  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_routes"), "0");
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_route_events"), "0");
}

TEST_F(routes_api_test, lists_routes_by_key_in_pages) {
  sluice_process a(env());
  wait_schema(a);
  for (const auto* s : {"c", "a", "b"}) {
    for (const auto* v : {"v1", "v2"}) {
      ASSERT_EQ(call(a, "POST", "/api/v1/routes", route_body(s, "http://h/", v)).status, 201);
    }
  }
  ASSERT_EQ(call(a, "POST", "/api/v1/routes/deactivate", key_body("b", "v2")).status, 200);

  const auto all = call(a, "GET", "/api/v1/routes");
  ASSERT_EQ(all.status, 200) << all.body;
  auto j = all.json();
  EXPECT_EQ(keys_of(j), (std::vector<std::string>{"items", "limit", "next"}));
  EXPECT_EQ(j["items"].size(), 6u);
  EXPECT_EQ(j["limit"], 100);
  EXPECT_TRUE(j["next"].is_null());
  EXPECT_EQ(j["items"][0]["service"], "a");
  EXPECT_EQ(j["items"][0]["version"], "v1");

  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    const auto r = call(a, "GET",
                        "/api/v1/routes?tenant=acme&active=true&limit=2" +
                            (cursor.empty() ? std::string() : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto pj = r.json();
    for (const auto& item : pj["items"])
      seen.push_back(item["service"].get<std::string>() + item["version"].get<std::string>());
    if (pj["next"].is_null())
      break;
    cursor = pj["next"].get<std::string>();
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"av1", "av2", "bv1", "cv1", "cv2"}));

  const auto other = call(a, "GET", "/api/v1/routes?tenant=acme&limit=2");
  const auto next = other.json()["next"].get<std::string>();
  const auto mismatch = call(a, "GET", "/api/v1/routes?tenant=other&cursor=" + next);
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_EQ(mismatch.json()["error"]["code"], "cursor_filter_mismatch");

  const auto inactive = call(a, "GET", "/api/v1/routes?active=false");
  EXPECT_EQ(inactive.json()["items"].size(), 1u);
  const auto one = call(a, "GET", "/api/v1/routes?" + key_query("c", "v2"));
  EXPECT_EQ(one.json()["items"].size(), 1u);
}

TEST_F(routes_api_test, the_audit_log_matches_the_changes_one_for_one) {
  sluice_process a(env());
  wait_schema(a);
  ASSERT_EQ(call(a, "POST", "/api/v1/routes", route_body("a", "http://h/1")).status, 201);
  ASSERT_EQ(call(a, "POST", "/api/v1/routes", route_body("b", "http://h/2")).status, 201);
  ASSERT_EQ(call(a, "PUT", "/api/v1/routes", route_body("a", "http://h/3")).status, 200);
  // Refused and no-op calls leave no trace.
  ASSERT_EQ(call(a, "POST", "/api/v1/routes", route_body("a", "http://h/4")).status, 409);
  ASSERT_EQ(call(a, "POST", "/api/v1/routes/activate", key_body("a")).status, 200);
  ASSERT_EQ(call(a, "PUT", "/api/v1/routes", route_body("a", "http://h/3")).status, 200);
  ASSERT_EQ(call(a, "POST", "/api/v1/routes/deactivate", key_body("b")).status, 200);
  ASSERT_EQ(call(a, "DELETE", "/api/v1/routes?" + key_query("a")).status, 204);

  const auto all = call(a, "GET", "/api/v1/routes/events");
  ASSERT_EQ(all.status, 200) << all.body;
  const auto j = all.json();
  ASSERT_EQ(j["items"].size(), 5u) << all.body;
  EXPECT_TRUE(j["next"].is_null());
  // Newest first.
  std::vector<std::string> actions;
  for (const auto& e : j["items"])
    actions.push_back(e["action"].get<std::string>() + ":" + e["service"].get<std::string>());
  EXPECT_EQ(actions, (std::vector<std::string>{"deleted:a", "deactivated:b", "updated:a",
                                               "created:b", "created:a"}));
  const json& updated = j["items"][2];
  EXPECT_EQ(keys_of(updated),
            (std::vector<std::string>{"action", "actor", "after", "before", "created_at", "env",
                                      "id", "registry_version", "service", "tenant", "version"}));
  EXPECT_EQ(updated["before"]["url"], "http://h/1");
  EXPECT_EQ(updated["after"]["url"], "http://h/3");
  EXPECT_EQ(updated["actor"], "127.0.0.1");
  EXPECT_EQ(updated["registry_version"], 3);
  EXPECT_EQ(updated["tenant"], "acme");
  EXPECT_EQ(updated["env"], "prod");
  EXPECT_EQ(updated["version"], "v1");
  EXPECT_TRUE(j["items"][4]["before"].is_null());
  EXPECT_TRUE(j["items"][0]["after"].is_null());
  EXPECT_EQ(j["items"][0]["before"]["url"], "http://h/3");
  EXPECT_EQ(j["items"][1]["after"]["is_active"], false);

  // The API's items are the table's rows, one for one.
  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT string_agg(id || ':' || action || ':' || service || ':' || actor, "
                      "',' ORDER BY registry_version DESC) FROM sluice_route_events"),
            [&] {
              std::string s;
              for (const auto& e : j["items"]) {
                if (!s.empty())
                  s += ',';
                s += std::to_string(e["id"].get<std::int64_t>()) + ":" +
                     e["action"].get<std::string>() + ":" + e["service"].get<std::string>() + ":" +
                     e["actor"].get<std::string>();
              }
              return s;
            }());

  EXPECT_EQ(call(a, "GET", "/api/v1/routes/events?service=a").json()["items"].size(), 3u);
  EXPECT_EQ(call(a, "GET", "/api/v1/routes/events?action=created").json()["items"].size(), 2u);
  EXPECT_EQ(call(a, "GET", "/api/v1/routes/events?" + key_query("b") + "&action=deactivated")
                .json()["items"]
                .size(),
            1u);
  // start_time inclusive, end_time exclusive, at the update's own time.
  const std::string at = updated["created_at"].get<std::string>();
  const auto from = call(a, "GET", "/api/v1/routes/events?start_time=" + at);
  EXPECT_EQ(from.json()["items"].size(), 3u) << from.body;
  const auto until = call(a, "GET", "/api/v1/routes/events?end_time=" + at);
  EXPECT_EQ(until.json()["items"].size(), 2u) << until.body;
  const auto window =
      call(a, "GET", "/api/v1/routes/events?start_time=2020-01-01T00:00:00Z&end_time=" + at);
  EXPECT_EQ(window.json()["items"].size(), 2u);

  // Pages of two: 5, 4 | 3, 2 | 1.
  std::vector<std::int64_t> versions;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    const auto r = call(
        a, "GET",
        "/api/v1/routes/events?limit=2" + (cursor.empty() ? std::string() : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto pj = r.json();
    for (const auto& e : pj["items"])
      versions.push_back(e["registry_version"].get<std::int64_t>());
    if (pj["next"].is_null())
      break;
    cursor = pj["next"].get<std::string>();
  }
  EXPECT_EQ(versions, (std::vector<std::int64_t>{5, 4, 3, 2, 1}));
}

TEST_F(routes_api_test, answers_503_while_postgresql_is_away) {
  tcp_proxy proxy("127.0.0.1", url_port(db_.url()));
  proxy.cut();
  sluice_process a(env({{"DATABASE_URL", url_with_port(db_.url(), proxy.port())}}));
  for (const auto& [method, target, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"POST", "/api/v1/routes", route_body("a", "http://h/")},
           {"PUT", "/api/v1/routes", route_body("a", "http://h/")},
           {"POST", "/api/v1/routes/activate", key_body("a")},
           {"POST", "/api/v1/routes/deactivate", key_body("a")},
           {"DELETE", "/api/v1/routes?" + key_query("a"), ""},
           {"GET", "/api/v1/routes", ""},
           {"GET", "/api/v1/routes/events", ""}}) {
    const auto r = call(a, method, target, body);
    EXPECT_EQ(r.status, 503) << method << " " << target << " " << r.body;
    EXPECT_FALSE(r.header("retry-after").empty()) << method << " " << target;
    EXPECT_TRUE(r.json()["error"]["code"].is_string()) << r.body;
  }
  proxy.restore();
  wait_schema(a);
  EXPECT_EQ(call(a, "POST", "/api/v1/routes", route_body("a", "http://h/")).status, 201);
}

}  // namespace
}  // namespace sluice::test
