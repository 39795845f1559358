#include "sluice/api/readiness_checks.hpp"

#include <gtest/gtest.h>

namespace sluice::api {
namespace {

using namespace std::chrono_literals;
using clock = directory_watch::clock;

TEST(postgres_check, takes_pushes_only_when_reachable_with_the_schema) {
  const auto unprobed = postgres_check({}, true);
  EXPECT_FALSE(unprobed.ok);
  EXPECT_EQ(unprobed.takes_pushes, false);

  const auto down =
      postgres_check({true, std::make_error_code(std::errc::connection_refused)}, true);
  EXPECT_FALSE(down.ok);
  EXPECT_EQ(down.takes_pushes, false);
  EXPECT_EQ(down.detail.rfind("unreachable: ", 0), 0u) << down.detail;

  const auto unmigrated = postgres_check({true, {}}, false);
  EXPECT_FALSE(unmigrated.ok);
  EXPECT_EQ(unmigrated.takes_pushes, false);
  EXPECT_EQ(unmigrated.detail, "reachable; schema not migrated yet");

  const auto up = postgres_check({true, {}}, true);
  EXPECT_TRUE(up.ok);
  EXPECT_EQ(up.takes_pushes, true);
}

struct buffer_case {
  clock::time_point now = clock::now();
  directory_watch::state dirs{{{"/b/failover", true, {}}, {"/b/qos0", true, {}}}, now};
  push::buffers_status status;
  buffer_limits limits{1000, 0, 5000ms};

  check_result run() const { return buffer_check(dirs, status, limits, now); }
};

TEST(buffer_check, ok_with_room_reports_what_is_pending) {
  buffer_case c;
  c.status.failover.stats.pending_records = 3;
  c.status.failover.stats.disk_bytes = 899;
  const auto r = c.run();
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(r.takes_pushes, true);
  EXPECT_NE(r.detail.find("failover: 3 records pending, 899 of 1000 bytes used"), std::string::npos)
      << r.detail;
}

TEST(buffer_check, nearly_full_fails_but_still_takes_pushes_and_says_why) {
  buffer_case c;
  for (const std::uint64_t used : {900u, 999u}) {
    c.status.failover.stats.disk_bytes = used;
    const auto r = c.run();
    EXPECT_FALSE(r.ok) << used;
    EXPECT_EQ(r.takes_pushes, true) << used;
    EXPECT_NE(r.detail.find("nearly full (at least 90% of FILE_BUFFER_MAX_BYTES)"),
              std::string::npos)
        << r.detail;
    EXPECT_NE(r.detail.find("refused once it is full"), std::string::npos) << r.detail;
  }
}

TEST(buffer_check, full_takes_no_pushes) {
  buffer_case c;
  for (const std::uint64_t used : {1000u, 1200u}) {
    c.status.failover.stats.disk_bytes = used;
    const auto r = c.run();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.takes_pushes, false);
    EXPECT_NE(r.detail.find("failover buffer full: 0 bytes left"), std::string::npos) << r.detail;
  }
}

TEST(buffer_check, less_room_than_a_large_push_needs_counts_as_full) {
  buffer_case c;
  c.limits.headroom_bytes = 50;
  c.status.failover.stats.disk_bytes = 950;
  EXPECT_EQ(c.run().takes_pushes, true) << "exactly the headroom left still fits";
  c.status.failover.stats.disk_bytes = 951;
  const auto r = c.run();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.takes_pushes, false);
  EXPECT_NE(
      r.detail.find("49 bytes left of FILE_BUFFER_MAX_BYTES, less than a large push needs (50)"),
      std::string::npos)
      << r.detail;
}

TEST(buffer_check, an_unwritable_failover_directory_takes_no_pushes) {
  buffer_case c;
  c.dirs.dirs[0] = {"/b/failover", false, "No such file or directory"};
  const auto r = c.run();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.takes_pushes, false);
  EXPECT_EQ(r.detail, "/b/failover is not writable: No such file or directory");
}

TEST(buffer_check, an_unwritable_qos0_directory_fails_but_durable_pushes_go_on) {
  buffer_case c;
  c.dirs.dirs[1] = {"/b/qos0", false, "Read-only file system"};
  const auto r = c.run();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.takes_pushes, true);
  EXPECT_NE(r.detail.find("/b/qos0 is not writable: Read-only file system"), std::string::npos)
      << r.detail;
}

TEST(buffer_check, a_file_system_that_stopped_answering_takes_no_pushes) {
  buffer_case c;
  c.dirs.at = c.now - 5001ms;
  auto r = c.run();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.takes_pushes, false);
  EXPECT_NE(r.detail.find("has not answered a writability check for 5001 ms"), std::string::npos)
      << r.detail;

  c.dirs.at = c.now - 5000ms;
  EXPECT_TRUE(c.run().ok) << "an answer exactly max_answer_age old still counts";

  c.dirs.dirs.clear();
  EXPECT_EQ(c.run().takes_pushes, false);
}

TEST(workers_check, passes_while_every_consumer_consumes_and_names_each_one) {
  EXPECT_TRUE(workers_check({}).ok) << "no service is nothing to fail";
  worker::consumer_status green;
  green.service = "pay";
  green.flavour = "green";
  green.consuming = true;
  worker::consumer_status std_flavour = green;
  std_flavour.flavour = "std";
  auto all = workers_check({green, std_flavour});
  EXPECT_TRUE(all.ok);
  EXPECT_EQ(all.detail, "pay/green: consuming, pay/std: consuming");
  EXPECT_FALSE(all.takes_pushes.has_value()) << "workers never decide the code";
  std_flavour.consuming = false;
  std_flavour.last_error = "channel closed";
  const auto one_down = workers_check({green, std_flavour});
  EXPECT_FALSE(one_down.ok);
  EXPECT_EQ(one_down.detail, "pay/green: consuming, pay/std: not consuming (channel closed)");
}

TEST(deliveries_check, passes_while_every_subscription_consumes_and_shows_open_circuits) {
  EXPECT_TRUE(deliveries_check({}).ok) << "no subscription is nothing to fail";
  delivery::consumer_status a;
  a.queue = "orders";
  a.name = "billing";
  a.consuming = true;
  a.circuit = "closed";
  delivery::consumer_status b = a;
  b.name = "audit";
  b.circuit = "open";
  const auto all = deliveries_check({a, b});
  EXPECT_TRUE(all.ok);
  EXPECT_EQ(all.detail, "orders/billing: consuming, orders/audit: consuming (circuit open)");
  EXPECT_FALSE(all.takes_pushes.has_value()) << "deliveries never decide the code";
  b.consuming = false;
  b.last_error = "NOT_FOUND";
  b.circuit = "closed";
  const auto down = deliveries_check({a, b});
  EXPECT_FALSE(down.ok);
  EXPECT_EQ(down.detail, "orders/billing: consuming, orders/audit: not consuming (NOT_FOUND)");
}

TEST(registry_check, fails_until_the_follower_caught_up_once) {
  const auto now = std::chrono::system_clock::now();
  const auto never = registry_check({}, 0, now, 60s);
  EXPECT_FALSE(never.result.ok);
  EXPECT_EQ(never.result.takes_pushes, std::nullopt) << "never decides the code";
  EXPECT_TRUE(never.fields["applied_version"].is_null());
  EXPECT_EQ(never.fields["connected"], false);
  EXPECT_TRUE(never.fields["last_sync_at"].is_null());
}

TEST(registry_check, shows_the_cache_the_applied_version_and_whether_events_arrive) {
  const auto now = std::chrono::system_clock::now();
  routing::route_follower_status s;
  s.connected = true;
  s.applied = 42;
  s.events_applied = 7;
  s.last_event_at = now - 5s;
  s.last_sync_at = now - 10s;
  const auto up = registry_check(s, 3, now, 60s);
  EXPECT_TRUE(up.result.ok);
  EXPECT_EQ(up.fields["cache_entries"], 3);
  EXPECT_EQ(up.fields["applied_version"], 42);
  EXPECT_EQ(up.fields["events_arriving"], true);
  EXPECT_EQ(up.fields["events_applied"], 7);
  EXPECT_TRUE(up.fields["last_event_at"].is_string());
  EXPECT_NE(up.result.detail.find("applied registry version 42"), std::string::npos)
      << up.result.detail;

  EXPECT_EQ(registry_check(s, 3, now + 61s, 60s).fields["events_arriving"], false)
      << "no catch-up for longer than the full reload interval allows";
  s.connected = false;
  const auto down = registry_check(s, 3, now, 60s);
  EXPECT_FALSE(down.result.ok);
  EXPECT_EQ(down.fields["events_arriving"], false);
  EXPECT_EQ(down.fields["applied_version"], 42);
}

TEST(database_check, has_the_seed_s_pool_fields) {
  const auto up = database_check({3, 1, 0}, 8, true, {true, {}});
  EXPECT_TRUE(up.result.ok);
  EXPECT_EQ(up.result.takes_pushes, std::nullopt);
  EXPECT_EQ(up.fields, (nlohmann::json{{"initialized", true},
                                       {"min_connections", 0},
                                       {"max_connections", 8},
                                       {"current_connections", 3},
                                       {"available_connections", 1}}));
  const auto down =
      database_check({}, 8, false, {true, std::make_error_code(std::errc::connection_refused)});
  EXPECT_FALSE(down.result.ok);
  EXPECT_EQ(down.fields["initialized"], false);
  EXPECT_NE(down.result.detail.find("unreachable"), std::string::npos) << down.result.detail;
}

}  // namespace
}  // namespace sluice::api
