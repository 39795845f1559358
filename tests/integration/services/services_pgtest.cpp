// The services API, SERVICES_FILE and the follower through the real binary on a real
// PostgreSQL: CRUD and validation, list pages, two instances on one database following each
// other, file reloads, and a follower that loses PostgreSQL (behind a TCP proxy the test cuts,
// so the shared server keeps running for the other tests).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <signal.h>
#include <string>
#include <thread>

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

constexpr const char* payments_body =
    R"({"namespace":"default","defaultFlavour":"std","flavours":[{"name":"std","url":"http://payments-std.shop:8080"},{"name":"green"}],"timeoutMs":60000,"concurrency":32})";

constexpr const char* green_schedule =
    R"({"flavours":[{"name":"green","weight":70},{"name":"std","weight":30}],"validUntil":"2030-01-01T00:00:00Z"})";

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Writes next to `path` and renames over it, as editors and config tools do.
void replace_file(const std::string& path, const std::string& text) {
  write_file(path + ".tmp", text);
  std::filesystem::rename(path + ".tmp", path);
}

std::string file_with(const std::string& name, int timeout_ms, bool with_schedule = false) {
  json s = json::parse(payments_body);
  s["name"] = name;
  s["timeoutMs"] = timeout_ms;
  if (with_schedule)
    s["schedule"] = json::parse(green_schedule);
  return json{{"services", json::array({s})}}.dump();
}

double metric(std::uint16_t port, const std::string& series) {
  const std::string text = http_call(port, "GET", "/metrics").body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return -1e300;
  return std::stod(text.substr(at + series.size() + 2));
}

bool has_series(std::uint16_t port, const std::string& prefix) {
  return http_call(port, "GET", "/metrics").body.find("\n" + prefix) != std::string::npos;
}

class services_test : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir dir_;

  sluice_process::env_map env(sluice_process::env_map extra = {}, const std::string& buffer = "a") {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("FILE_BUFFER_DIR", dir_.path() + "/buffer-" + buffer);
    return extra;
  }

  // The follower has read the table once and LISTENs.
  static void wait_following(const sluice_process& s, int times = 1) {
    const bool ok = eventually(
        [&] {
          const std::string log = s.log();
          int n = 0;
          for (auto at = log.find("stored services loaded"); at != std::string::npos;
               at = log.find("stored services loaded", at + 1)) {
            ++n;
          }
          return n >= times;
        },
        20s);
    ASSERT_TRUE(ok) << "the follower did not load the services table:\n" << s.log();
  }

  static http_result put(std::uint16_t port, const std::string& target, const std::string& body) {
    return http_call(port, "PUT", target, body, json_type);
  }
};

TEST_F(services_test, crud_through_the_api) {
  sluice_process s(env());
  wait_following(s);
  const auto port = s.port();

  const auto created = put(port, "/api/v1/services/payments", payments_body);
  ASSERT_EQ(created.status, 201) << created.body;
  json expected = json::parse(payments_body);
  expected["name"] = "payments";
  EXPECT_EQ(created.json(), expected);
  const auto replaced = put(port, "/api/v1/services/payments",
                            R"({"flavours":[{"name":"std"},{"name":"green"}],"timeoutMs":5000})");
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  EXPECT_EQ(replaced.json()["timeoutMs"], 5000);
  EXPECT_EQ(replaced.json()["defaultFlavour"], "std");

  const auto got = http_call(port, "GET", "/api/v1/services/payments");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.json(), replaced.json());

  // GET's answer PUT back is the same definition.
  const auto round_trip = put(port, "/api/v1/services/payments", got.body);
  EXPECT_EQ(round_trip.status, 200) << round_trip.body;
  EXPECT_EQ(round_trip.json(), got.json());

  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT spec->>'timeoutMs' FROM sluice_services WHERE name = 'payments'"),
            "5000");

  EXPECT_EQ(http_call(port, "DELETE", "/api/v1/services/payments").status, 204);
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/payments").status, 404);
  const auto again = http_call(port, "DELETE", "/api/v1/services/payments");
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(again.json()["error"]["code"], "service_not_found");
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_services"), "0");
}

TEST_F(services_test, invalid_definitions_are_refused_naming_the_field) {
  sluice_process s(env());
  wait_following(s);
  const auto port = s.port();
  const auto refused = [&](const std::string& target, const std::string& body) {
    const auto r = put(port, target, body);
    EXPECT_EQ(r.status, 400) << target << " " << body << " -> " << r.body;
    if (r.status != 400)
      return std::string();
    EXPECT_EQ(r.json()["error"]["code"], "invalid_service") << r.body;
    return r.json()["error"].value("field", std::string("<none>"));
  };
  EXPECT_EQ(refused("/api/v1/services/payments", R"({})"), "flavours");
  EXPECT_EQ(
      refused("/api/v1/services/payments", R"({"flavours":[{"name":"std","url":"ftp://x"}]})"),
      "flavours[0].url");
  EXPECT_EQ(refused("/api/v1/services/payments", R"({"flavours":[{"name":"std"}],"timeoutMs":0})"),
            "timeoutMs");
  EXPECT_EQ(refused("/api/v1/services/payments", R"({"flavours":[{"name":"std"}],"colour":"red"})"),
            "colour");
  EXPECT_EQ(refused("/api/v1/services/bad%20name", R"({"flavours":[{"name":"std"}]})"), "name");
  EXPECT_EQ(put(port, "/api/v1/services/payments", "{").status, 400);
  EXPECT_EQ(http_call(port, "PUT", "/api/v1/services/payments", payments_body,
                      {{"Content-Type", "text/plain"}})
                .status,
            415);
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/payments").status, 404);
  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_services"), "0") << "nothing stored";
}

TEST_F(services_test, schedules_are_set_read_and_deleted) {
  sluice_process s(env({{"TARGET_SVC_NAME", "orders"}, {"TARGET_SVC_FLAVOURS", "std,green"}}));
  wait_following(s);
  const auto port = s.port();
  ASSERT_EQ(put(port, "/api/v1/services/payments", payments_body).status, 201);
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/payments/schedule").json()["error"]["code"],
            "schedule_not_found");

  const auto set = put(port, "/api/v1/services/payments/schedule", green_schedule);
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.json(), json::parse(green_schedule));
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/payments/schedule").json(),
            json::parse(green_schedule));
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/payments").json()["schedule"],
            json::parse(green_schedule));
  EXPECT_GT(metric(port, R"(sluice_schedule_valid_seconds{service="payments"})"), 1e7);

  // An unknown flavour, a bad date; a PUT of the service that drops a scheduled flavour.
  const auto unknown =
      put(port, "/api/v1/services/payments/schedule",
          R"({"flavours":[{"name":"blue","weight":1}],"validUntil":"2030-01-01T00:00:00Z"})");
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_EQ(unknown.json()["error"]["field"], "flavours[0].name") << unknown.body;
  const auto bad_date = put(port, "/api/v1/services/payments/schedule",
                            R"({"flavours":[{"name":"std","weight":1}],"validUntil":"soon"})");
  EXPECT_EQ(bad_date.status, 400);
  EXPECT_EQ(bad_date.json()["error"]["field"], "validUntil") << bad_date.body;
  const auto drops = put(port, "/api/v1/services/payments", R"({"flavours":[{"name":"std"}]})");
  EXPECT_EQ(drops.status, 400) << drops.body;
  EXPECT_EQ(drops.json()["error"]["field"], "flavours");
  // A PUT without "schedule" keeps the stored one.
  const auto kept = put(port, "/api/v1/services/payments", payments_body);
  EXPECT_EQ(kept.status, 200);
  EXPECT_EQ(kept.json()["schedule"], json::parse(green_schedule)) << kept.body;

  // An expired schedule: the gauge goes negative.
  ASSERT_EQ(put(port, "/api/v1/services/payments/schedule",
                R"({"flavours":[{"name":"std","weight":1}],"validUntil":"2020-01-01T00:00:00Z"})")
                .status,
            200);
  EXPECT_LT(metric(port, R"(sluice_schedule_valid_seconds{service="payments"})"), -1e7);

  EXPECT_EQ(http_call(port, "DELETE", "/api/v1/services/payments/schedule").status, 204);
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/payments/schedule").status, 404);
  EXPECT_FALSE(has_series(port, R"(sluice_schedule_valid_seconds{service="payments"})"))
      << "the series goes with the schedule";
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/nothing/schedule").json()["error"]["code"],
            "service_not_found");

  // The environment's service takes a schedule (it becomes a stored service of the same
  // definition) but cannot be deleted.
  const auto env_schedule = put(port, "/api/v1/services/orders/schedule", green_schedule);
  EXPECT_EQ(env_schedule.status, 200) << env_schedule.body;
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/orders").json()["schedule"],
            json::parse(green_schedule));
  pg_session pg(db_.url());
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_services WHERE name = 'orders'"), "1");
  EXPECT_EQ(http_call(port, "DELETE", "/api/v1/services/orders").status, 204)
      << "the stored override goes";
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/orders").json().count("schedule"), 0u)
      << "the environment's definition is back";
  const auto env_delete = http_call(port, "DELETE", "/api/v1/services/orders");
  EXPECT_EQ(env_delete.status, 409);
  EXPECT_EQ(env_delete.json()["error"]["code"], "service_managed_by_env");
}

TEST_F(services_test, the_list_pages_through_every_service_by_name) {
  sluice_process s(env({{"TARGET_SVC_NAME", "env-svc"}}));
  wait_following(s);
  const auto port = s.port();
  std::set<std::string> expected{"env-svc"};
  for (const char* name : {"svc-g", "svc-b", "svc-e", "svc-a", "svc-f", "svc-c", "svc-d"}) {
    json body = json::parse(payments_body);
    if (std::string(name) < "svc-d")
      body["namespace"] = "shop";
    ASSERT_EQ(put(port, std::string("/api/v1/services/") + name, body.dump()).status, 201);
    expected.insert(name);
  }

  std::vector<std::string> seen;
  std::string target = "/api/v1/services?limit=3";
  int pages = 0;
  for (;;) {
    const auto r = http_call(port, "GET", target);
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = r.json();
    EXPECT_EQ(j["limit"], 3);
    EXPECT_LE(j["items"].size(), 3u);
    for (const auto& item : j["items"])
      seen.push_back(item["name"]);
    ++pages;
    if (j["next"].is_null())
      break;
    target = "/api/v1/services?limit=3&cursor=" + j["next"].get<std::string>();
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, std::vector<std::string>(expected.begin(), expected.end()))
      << "every service once, ordered by name";

  const auto first = http_call(port, "GET", "/api/v1/services").json();
  EXPECT_EQ(first["limit"], 100);
  EXPECT_EQ(first["items"].size(), 8u);
  EXPECT_TRUE(first["next"].is_null());

  // A filter, and a cursor made for it.
  const auto shop = http_call(port, "GET", "/api/v1/services?namespace=shop&limit=2").json();
  ASSERT_EQ(shop["items"].size(), 2u);
  EXPECT_EQ(shop["items"][0]["name"], "svc-a");
  const std::string cursor = shop["next"];
  const auto shop2 =
      http_call(port, "GET", "/api/v1/services?namespace=shop&limit=2&cursor=" + cursor).json();
  ASSERT_EQ(shop2["items"].size(), 1u);
  EXPECT_EQ(shop2["items"][0]["name"], "svc-c");
  EXPECT_TRUE(shop2["next"].is_null());

  const auto other_filter = http_call(port, "GET", "/api/v1/services?limit=2&cursor=" + cursor);
  EXPECT_EQ(other_filter.status, 400);
  EXPECT_EQ(other_filter.json()["error"]["code"], "cursor_filter_mismatch");
  std::string tampered = cursor;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  const auto edited =
      http_call(port, "GET", "/api/v1/services?namespace=shop&limit=2&cursor=" + tampered);
  EXPECT_EQ(edited.status, 400);
  EXPECT_EQ(edited.json()["error"]["code"], "invalid_cursor");
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services?cursor=%%%").status, 400);
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services?limit=0").status, 400);
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services?limit=1001").status, 400);
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services?limit=1000").status, 200);
}

TEST_F(services_test, a_second_instance_follows_within_a_second) {
  sluice_process a(env({}, "a"));
  sluice_process b(env({}, "b"));
  wait_following(a);
  wait_following(b);

  // Several rounds: one lucky notification proves little.
  std::chrono::milliseconds worst{0};
  for (int round = 0; round < 5; ++round) {
    const std::string name = "payments-" + std::to_string(round);
    ASSERT_EQ(put(a.port(), "/api/v1/services/" + name, payments_body).status, 201);
    const auto put_seen = time_until(
        [&] { return http_call(b.port(), "GET", "/api/v1/services/" + name).status == 200; }, 5s);
    ASSERT_TRUE(put_seen) << "B never saw the PUT\n" << b.log();

    ASSERT_EQ(put(a.port(), "/api/v1/services/" + name + "/schedule", green_schedule).status, 200);
    const auto schedule_seen = time_until(
        [&] {
          return http_call(b.port(), "GET", "/api/v1/services/" + name + "/schedule").status == 200;
        },
        5s);
    ASSERT_TRUE(schedule_seen) << "B never saw the schedule";

    ASSERT_EQ(put(a.port(), "/api/v1/services/" + name,
                  R"({"flavours":[{"name":"std"},{"name":"green"}],"timeoutMs":1234})")
                  .status,
              200);
    const auto change_seen = time_until(
        [&] {
          const auto r = http_call(b.port(), "GET", "/api/v1/services/" + name);
          return r.status == 200 && r.json()["timeoutMs"] == 1234;
        },
        5s);
    ASSERT_TRUE(change_seen) << "B never saw the change";

    ASSERT_EQ(http_call(a.port(), "DELETE", "/api/v1/services/" + name).status, 204);
    const auto delete_seen = time_until(
        [&] { return http_call(b.port(), "GET", "/api/v1/services/" + name).status == 404; }, 5s);
    ASSERT_TRUE(delete_seen) << "B never saw the DELETE";

    std::printf(
        "round %d: B saw PUT after %lld ms, schedule %lld ms, change %lld ms, DELETE %lld ms\n",
        round, static_cast<long long>(put_seen->count()),
        static_cast<long long>(schedule_seen->count()),
        static_cast<long long>(change_seen->count()), static_cast<long long>(delete_seen->count()));
    for (auto t : {*put_seen, *schedule_seen, *change_seen, *delete_seen})
      worst = std::max(worst, t);
  }
  std::printf("worst time for B to follow A: %lld ms\n", static_cast<long long>(worst.count()));
  EXPECT_LT(worst, 1s);
  // The notification path did it, not the 30 s full reload.
  EXPECT_EQ(metric(b.port(), R"(sluice_services_follower_reloads_total{kind="full"})"), 1);
}

TEST_F(services_test, services_file_is_loaded_followed_and_wins_over_the_api) {
  const std::string path = dir_.path() + "/services.json";
  write_file(path, file_with("payments", 1000, true));
  sluice_process s(env({{"SERVICES_FILE", path}}));
  wait_following(s);
  const auto port = s.port();

  const auto got = http_call(port, "GET", "/api/v1/services/payments");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.json()["timeoutMs"], 1000);
  EXPECT_EQ(got.json()["schedule"], json::parse(green_schedule));
  EXPECT_GT(metric(port, R"(sluice_schedule_valid_seconds{service="payments"})"), 1e7);

  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"PUT", "/api/v1/services/payments"},
           {"DELETE", "/api/v1/services/payments"},
           {"PUT", "/api/v1/services/payments/schedule"},
           {"DELETE", "/api/v1/services/payments/schedule"}}) {
    const auto r =
        http_call(port, method, target,
                  target.ends_with("schedule") ? green_schedule : payments_body, json_type);
    EXPECT_EQ(r.status, 409) << method << " " << target << ": " << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "service_managed_by_file");
  }

  // Edited in place.
  write_file(path, file_with("payments", 2000));
  const auto edit_seen = time_until(
      [&] {
        return http_call(port, "GET", "/api/v1/services/payments").json()["timeoutMs"] == 2000;
      },
      5s);
  ASSERT_TRUE(edit_seen) << s.log();
  std::printf("in-place edit seen after %lld ms\n", static_cast<long long>(edit_seen->count()));
  EXPECT_FALSE(has_series(port, R"(sluice_schedule_valid_seconds{service="payments"})"));

  // Renamed over.
  replace_file(path, file_with("payments", 3000));
  EXPECT_TRUE(eventually(
      [&] {
        return http_call(port, "GET", "/api/v1/services/payments").json()["timeoutMs"] == 3000;
      },
      5s));

  // SIGHUP re-reads (and says so) even when nothing changed.
  ASSERT_EQ(::kill(s.pid(), SIGHUP), 0);
  EXPECT_TRUE(s.wait_for_log("reloaded (SIGHUP): 1 services", 5s)) << s.log();

  // An invalid file on reload keeps the services and counts the error.
  write_file(path,
             R"({"services":[{"name":"payments","flavours":[{"name":"std","url":"nope"}]}]})");
  EXPECT_TRUE(s.wait_for_log("services[0].flavours[0].url", 5s)) << s.log();
  EXPECT_TRUE(
      eventually([&] { return metric(port, "sluice_services_file_errors_total") >= 1; }, 5s));
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/payments").json()["timeoutMs"], 3000);
  ASSERT_EQ(::kill(s.pid(), SIGHUP), 0);
  EXPECT_TRUE(
      eventually([&] { return metric(port, "sluice_services_file_errors_total") >= 2; }, 5s))
      << "SIGHUP re-reads the broken file and refuses it again";
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/payments").status, 200);

  // Back to valid, with the service gone from the file: a stored one of the same name shows.
  ASSERT_EQ(put(port, "/api/v1/services/orders", payments_body).status, 201);
  replace_file(path,
               R"({"services":[{"name":"orders","flavours":[{"name":"std"}],"timeoutMs":777}]})");
  EXPECT_TRUE(eventually(
      [&] { return http_call(port, "GET", "/api/v1/services/payments").status == 404; }, 5s));
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/orders").json()["timeoutMs"], 777)
      << "the file wins over the API";
  replace_file(path, R"({"services":[]})");
  EXPECT_TRUE(eventually(
      [&] {
        return http_call(port, "GET", "/api/v1/services/orders").json()["timeoutMs"] == 60000;
      },
      5s))
      << "the stored definition shows again once the file drops the name";
}

TEST_F(services_test, a_configmap_symlink_swap_is_seen) {
  // kubelet's layout: services.json -> ..data/services.json, ..data -> ..<timestamp>, swapped
  // by renaming a new ..data symlink over the old one.
  namespace fs = std::filesystem;
  const fs::path root = fs::path(dir_.path()) / "config";
  fs::create_directories(root / "..v1");
  fs::create_directories(root / "..v2");
  write_file((root / "..v1" / "services.json").string(), file_with("payments", 1111));
  write_file((root / "..v2" / "services.json").string(), file_with("payments", 2222));
  fs::create_directory_symlink("..v1", root / "..data");
  fs::create_symlink("..data/services.json", root / "services.json");

  sluice_process s(env({{"SERVICES_FILE", (root / "services.json").string()}}));
  const auto port = s.port();
  EXPECT_EQ(http_call(port, "GET", "/api/v1/services/payments").json()["timeoutMs"], 1111);
  fs::create_directory_symlink("..v2", root / "..data_tmp");
  fs::rename(root / "..data_tmp", root / "..data");
  EXPECT_TRUE(eventually(
      [&] {
        return http_call(port, "GET", "/api/v1/services/payments").json()["timeoutMs"] == 2222;
      },
      5s))
      << s.log();
}

TEST_F(services_test, an_invalid_file_at_start_stops_start_up_with_exit_2) {
  const std::string path = dir_.path() + "/services.json";
  write_file(path,
             R"({"services":[{"name":"payments","flavours":[{"name":"std"}],"timeoutMs":"x"}]})");
  const auto r =
      run_sluice({}, env({{"SERVICES_FILE", path}, {"SLUICE_HTTP_ADDR", "127.0.0.1:0"}}));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("services[0].timeoutMs"), std::string::npos) << r.output;

  const auto missing =
      run_sluice({}, env({{"SERVICES_FILE", path + ".none"}, {"SLUICE_HTTP_ADDR", "127.0.0.1:0"}}));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find(path + ".none"), std::string::npos) << missing.output;
}

TEST_F(services_test, the_follower_reconnects_and_catches_up_after_postgresql_was_away) {
  tcp_proxy proxy("127.0.0.1", url_port(db_.url()));
  const std::string via_proxy = url_with_port(db_.url(), proxy.port());

  // PostgreSQL unreachable at start: sluice starts anyway, with what it has.
  proxy.cut();
  sluice_process a(env({{"DATABASE_URL", via_proxy}, {"TARGET_SVC_NAME", "orders"}}, "a"));
  EXPECT_EQ(http_call(a.port(), "GET", "/api/v1/services/orders").status, 200);
  const auto refused = put(a.port(), "/api/v1/services/payments", payments_body);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.json()["error"]["code"], "db_unavailable");
  EXPECT_FALSE(refused.header("retry-after").empty());
  proxy.restore();
  wait_following(a);

  sluice_process b(env({}, "b"));
  wait_following(b);
  ASSERT_EQ(put(b.port(), "/api/v1/services/payments", payments_body).status, 201);
  ASSERT_TRUE(eventually(
      [&] { return http_call(a.port(), "GET", "/api/v1/services/payments").status == 200; }, 2s));

  // Cut while following: changes made meanwhile reach A once it is back (no notification
  // survives the cut; the full reload after the reconnect brings them).
  proxy.cut();
  ASSERT_TRUE(a.wait_for_log("LISTEN connection lost", 10s)) << a.log();
  ASSERT_EQ(put(b.port(), "/api/v1/services/while-away", payments_body).status, 201);
  ASSERT_EQ(http_call(b.port(), "DELETE", "/api/v1/services/payments").status, 204);
  std::this_thread::sleep_for(300ms);  // several reconnect attempts fail meanwhile
  EXPECT_EQ(http_call(a.port(), "GET", "/api/v1/services/while-away").status, 404);
  proxy.restore();
  const auto caught_up = time_until(
      [&] {
        return http_call(a.port(), "GET", "/api/v1/services/while-away").status == 200 &&
               http_call(a.port(), "GET", "/api/v1/services/payments").status == 404;
      },
      15s);
  ASSERT_TRUE(caught_up) << a.log();
  std::printf("caught up %lld ms after PostgreSQL came back\n",
              static_cast<long long>(caught_up->count()));
  EXPECT_TRUE(
      eventually([&] { return metric(a.port(), "sluice_services_follower_connected") == 1; }, 5s));

  // The server ends the LISTEN session itself (restart, pg_terminate_backend): the same.
  pg_session pg(db_.url());
  const std::string killed = pg.scalar(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE application_name = 'sluice-services-follower' AND datname = current_database()");
  EXPECT_EQ(killed, "2") << "one LISTEN session per instance";
  wait_following(a, 3);
  wait_following(b, 2);
  ASSERT_EQ(put(b.port(), "/api/v1/services/after-kill", payments_body).status, 201);
  const auto followed = time_until(
      [&] { return http_call(a.port(), "GET", "/api/v1/services/after-kill").status == 200; }, 5s);
  ASSERT_TRUE(followed);
  EXPECT_LT(*followed, 1s);
}

}  // namespace
}  // namespace sluice::test
