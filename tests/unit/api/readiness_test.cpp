#include "sluice/api/readiness.hpp"

#include <stdexcept>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::api {
namespace {

using json = nlohmann::json;

struct fixture {
  metrics::registry metrics;
  readiness ready{metrics};
  check_result postgres{true, "reachable", true};
  check_result buffer{true, "0 records pending", true};
  check_result rabbitmq{true, "connected", std::nullopt};

  fixture() {
    ready.add("postgres", [this] { return postgres; });
    ready.add("buffer", [this] { return buffer; });
    ready.add("rabbitmq", [this] { return rabbitmq; });
  }
  double gauge() { return metrics.add_gauge("sluice_ready", "").get().value(); }
};

TEST(readiness, answers_each_check_by_name_with_status_and_code) {
  fixture f;
  auto r = f.ready.respond(false);
  EXPECT_EQ(r.status, 200);
  json body = json::parse(r.body);
  EXPECT_EQ(body["status"], "ready");
  EXPECT_EQ(body["checks"]["postgres"], (json{{"ok", true}, {"detail", "reachable"}}));
  EXPECT_EQ(body["checks"].size(), 3u);

  f.postgres = {false, "unreachable: connection refused", false};
  r = f.ready.respond(false);
  body = json::parse(r.body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body["status"], "degraded");
  EXPECT_EQ(body["checks"]["postgres"]["detail"], "unreachable: connection refused");
  r = f.ready.respond(true);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json::parse(r.body)["status"], "degraded");

  f.buffer = {false, "/x is not writable", false};
  r = f.ready.respond(false);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json::parse(r.body)["status"], "not_ready");
}

TEST(readiness, sets_sluice_ready_on_every_evaluation) {
  fixture f;
  f.ready.evaluate();
  EXPECT_EQ(f.gauge(), 1.0);
  f.rabbitmq.ok = false;
  f.ready.respond(false);
  EXPECT_EQ(f.gauge(), 0.5);
  f.postgres = {false, "down", false};
  f.buffer = {false, "full", false};
  f.ready.evaluate(true);
  EXPECT_EQ(f.gauge(), 0.0);
}

TEST(readiness, a_scrape_reevaluates_without_any_probe) {
  fixture f;
  f.ready.evaluate();
  f.postgres = {false, "down", false};
  const std::string text = f.metrics.expose();
  EXPECT_NE(text.find("\nsluice_ready 0.5\n"), std::string::npos) << text;
  f.buffer = {false, "full", false};
  EXPECT_NE(f.metrics.expose().find("\nsluice_ready 0\n"), std::string::npos);
}

TEST(readiness, a_check_that_throws_fails_without_taking_the_others_down) {
  fixture f;
  f.ready.add("routes", []() -> check_result { throw std::runtime_error("boom"); });
  const auto r = f.ready.respond(false);
  EXPECT_EQ(r.status, 200);
  const json body = json::parse(r.body);
  EXPECT_EQ(body["status"], "degraded");
  EXPECT_EQ(body["checks"]["routes"], (json{{"ok", false}, {"detail", "check failed: boom"}}));
}

TEST(readiness, a_check_s_fields_stand_next_to_ok_and_detail) {
  fixture f;
  f.ready.add_with_fields("database", [] {
    return check_with_fields{{true, "2 of 8 open", std::nullopt},
                             {{"max_connections", 8}, {"current_connections", 2}}};
  });
  const json body = json::parse(f.ready.respond(false).body);
  EXPECT_EQ(body["checks"]["database"], (json{{"ok", true},
                                              {"detail", "2 of 8 open"},
                                              {"max_connections", 8},
                                              {"current_connections", 2}}));
  EXPECT_EQ(body["checks"]["postgres"].size(), 2u) << "no fields: ok and detail only";
}

}  // namespace
}  // namespace sluice::api
