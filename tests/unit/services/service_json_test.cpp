#include "sluice/services/service_json.hpp"

#include <cstdlib>

#include <gtest/gtest.h>

namespace sluice::services {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::system_clock;

service_defaults defaults() {
  service_defaults d;
  d.namespace_ = "shop";
  d.timeout = 30'000ms;
  d.concurrency = 8;
  return d;
}

service parsed(std::string_view json, std::string_view name = "payments") {
  auto r = parse_service(name, json, defaults());
  if (auto* e = std::get_if<parse_error>(&r))
    ADD_FAILURE() << json << ": " << e->field << " " << e->message;
  return std::holds_alternative<service>(r) ? std::get<service>(r) : service{};
}

parse_error refused(std::string_view json, std::string_view name = "payments") {
  auto r = parse_service(name, json, defaults());
  if (std::holds_alternative<service>(r)) {
    ADD_FAILURE() << "accepted: " << json;
    return {};
  }
  auto e = std::get<parse_error>(r);
  EXPECT_FALSE(e.message.empty());
  return e;
}

TEST(valid_name, is_letters_digits_dash_underscore_of_1_to_100_bytes) {
  EXPECT_TRUE(valid_name("payments"));
  EXPECT_TRUE(valid_name("aB-c_9"));
  EXPECT_FALSE(valid_name("a.b")) << "'.' joins the RabbitMQ names";
  EXPECT_TRUE(valid_namespace("a.B-c_9"));
  EXPECT_TRUE(valid_name(std::string(100, 'x')));
  EXPECT_FALSE(valid_name(""));
  EXPECT_FALSE(valid_name(std::string(101, 'x')));
  EXPECT_FALSE(valid_name("a b"));
  EXPECT_FALSE(valid_name("a/b"));
  EXPECT_FALSE(valid_name("a:b"));
  EXPECT_FALSE(valid_name("caf\xc3\xa9"));
}

TEST(parse_service, takes_the_defaults_for_what_is_left_out) {
  const service s = parsed(R"({"flavours":[{"name":"std"},{"name":"green"}]})");
  EXPECT_EQ(s.name, "payments");
  EXPECT_EQ(s.namespace_, "shop");
  EXPECT_EQ(s.default_flavour, "std");
  ASSERT_EQ(s.flavours.size(), 2u);
  EXPECT_EQ(s.flavours[1].name, "green");
  EXPECT_EQ(s.flavours[1].url, "");
  EXPECT_EQ(s.timeout, 30'000ms);
  EXPECT_EQ(s.concurrency, 8u);
  EXPECT_FALSE(s.batch);
  EXPECT_FALSE(s.traffic);
  EXPECT_EQ(s.source, service_source::api);
}

TEST(parse_service, reads_every_field_of_the_issue_example) {
  const service s = parsed(
      R"({"namespace":"default","defaultFlavour":"green","flavours":[{"name":"std","url":"http://payments-std.shop:8080"},{"name":"green"}],"timeoutMs":60000,"concurrency":32,
          "batch":{"maxRequests":20,"maxWaitMs":5,"url":"http://batch.shop/b"},
          "schedule":{"flavours":[{"name":"green","weight":70},{"name":"std","weight":30}],"validUntil":"2026-12-31T00:00:00Z"}})");
  EXPECT_EQ(s.namespace_, "default");
  EXPECT_EQ(s.default_flavour, "green");
  EXPECT_EQ(s.flavours[0].url, "http://payments-std.shop:8080");
  EXPECT_EQ(s.timeout, 60'000ms);
  EXPECT_EQ(s.concurrency, 32u);
  ASSERT_TRUE(s.batch);
  EXPECT_EQ(s.batch->max_requests, 20u);
  EXPECT_EQ(s.batch->max_wait, 5ms);
  EXPECT_EQ(s.batch->url, "http://batch.shop/b");
  ASSERT_TRUE(s.traffic);
  ASSERT_EQ(s.traffic->flavours.size(), 2u);
  EXPECT_EQ(s.traffic->flavours[0].name, "green");
  EXPECT_EQ(s.traffic->flavours[0].weight, 70u);
  EXPECT_EQ(clock::to_time_t(s.traffic->valid_until), 1798675200);
}

TEST(parse_service, batch_defaults_and_null_optionals) {
  const service s = parsed(
      R"({"flavours":[{"name":"std","url":null}],"batch":{"url":"http://b"},"schedule":null})");
  ASSERT_TRUE(s.batch);
  EXPECT_EQ(s.batch->max_requests, 10u);
  EXPECT_EQ(s.batch->max_wait, 50ms);
  EXPECT_FALSE(s.traffic);
  EXPECT_FALSE(parsed(R"({"flavours":[{"name":"std"}],"batch":null})").batch);
}

TEST(parse_service, every_failure_names_its_field) {
  struct bad_case {
    const char* json;
    const char* field;
  };
  const bad_case cases[] = {
      {"not json", "body"},
      {"[1]", "body"},
      {"{}", "flavours"},
      {R"({"flavours":[]})", "flavours"},
      {R"({"flavours":{"name":"std"}})", "flavours"},
      {R"({"flavours":["std"]})", "flavours[0]"},
      {R"({"flavours":[{"url":"http://x"}]})", "flavours[0].name"},
      {R"({"flavours":[{"name":7}]})", "flavours[0].name"},
      {R"({"flavours":[{"name":"a b"}]})", "flavours[0].name"},
      {R"({"flavours":[{"name":"std"},{"name":"std"}]})", "flavours[1].name"},
      {R"({"flavours":[{"name":"std"},{"name":"green","url":"https://g"}]})", "flavours[1].url"},
      {R"({"flavours":[{"name":"std"},{"name":"green","url":"http://g/?q=1"}]})",
       "flavours[1].url"},
      {R"({"flavours":[{"name":"std"},{"name":"green","url":5}]})", "flavours[1].url"},
      {R"({"flavours":[{"name":"std","weight":1}]})", "flavours[0].weight"},
      {R"({"flavours":[{"name":"std"}],"namespace":"a/b"})", "namespace"},
      {R"({"flavours":[{"name":"std"}],"namespace":null})", "namespace"},
      {R"({"flavours":[{"name":"std"}],"defaultFlavour":"green"})", "defaultFlavour"},
      {R"({"flavours":[{"name":"std"}],"defaultFlavour":1})", "defaultFlavour"},
      {R"({"flavours":[{"name":"std"}],"timeoutMs":0})", "timeoutMs"},
      {R"({"flavours":[{"name":"std"}],"timeoutMs":86400001})", "timeoutMs"},
      {R"({"flavours":[{"name":"std"}],"timeoutMs":1.5})", "timeoutMs"},
      {R"({"flavours":[{"name":"std"}],"timeoutMs":"60000"})", "timeoutMs"},
      {R"({"flavours":[{"name":"std"}],"timeoutMs":-1})", "timeoutMs"},
      {R"({"flavours":[{"name":"std"}],"timeoutMs":18446744073709551615})", "timeoutMs"},
      {R"({"flavours":[{"name":"std"}],"concurrency":0})", "concurrency"},
      {R"({"flavours":[{"name":"std"}],"concurrency":65536})", "concurrency"},
      {R"({"flavours":[{"name":"std"}],"concurrency":true})", "concurrency"},
      {R"({"flavours":[{"name":"std"}],"batch":{}})", "batch.url"},
      {R"({"flavours":[{"name":"std"}],"batch":true})", "batch"},
      {R"({"flavours":[{"name":"std"}],"batch":{"url":"x"}})", "batch.url"},
      {R"({"flavours":[{"name":"std"}],"batch":{"url":"http://b","maxRequests":0}})",
       "batch.maxRequests"},
      {R"({"flavours":[{"name":"std"}],"batch":{"url":"http://b","maxRequests":10001}})",
       "batch.maxRequests"},
      {R"({"flavours":[{"name":"std"}],"batch":{"url":"http://b","maxWaitMs":0}})",
       "batch.maxWaitMs"},
      {R"({"flavours":[{"name":"std"}],"batch":{"url":"http://b","maxWaitMs":60001}})",
       "batch.maxWaitMs"},
      {R"({"flavours":[{"name":"std"}],"batch":{"url":"http://b","size":3}})", "batch.size"},
      {R"({"flavours":[{"name":"std"}],"timeout":1000})", "timeout"},
      {R"({"flavours":[{"name":"std"}],"timeoutMs":1000,"timeoutMs":2000})", "timeoutMs"},
      {R"({"flavours":[{"name":"std","url":"http://a","url":"http://b"}]})", "url"},
      {R"({"flavours":[{"name":"std"}],"name":"other"})", "name"},
      {R"({"flavours":[{"name":"std"}],"schedule":[]})", "schedule"},
      {R"({"flavours":[{"name":"std"}],"schedule":{"flavours":[{"name":"green","weight":1}],"validUntil":"2026-12-31T00:00:00Z"}})",
       "schedule.flavours[0].name"},
      {R"({"flavours":[{"name":"std"}],"schedule":{"flavours":[{"name":"std","weight":1}]}})",
       "schedule.validUntil"},
      {R"({"flavours":[{"name":"std"}],"schedule":{"flavours":[{"name":"std","weight":1}],"validUntil":"soon","x":1}})",
       "schedule.x"},
  };
  for (const auto& c : cases) {
    const parse_error e = refused(c.json);
    EXPECT_EQ(e.field, c.field) << c.json << " -> " << e.message;
  }
  EXPECT_EQ(refused(R"({"flavours":[{"name":"std"}]})", "bad name").field, "name");
  EXPECT_EQ(refused(R"({"flavours":[{"name":"std"}]})", "").field, "name");
}

TEST(parse_service, accepts_its_own_name_in_the_body) {
  EXPECT_EQ(parsed(R"({"name":"payments","flavours":[{"name":"std"}]})").name, "payments");
}

TEST(parse_service, accepts_the_bounds_themselves) {
  const service s = parsed(
      R"({"flavours":[{"name":"std"}],"timeoutMs":86400000,"concurrency":65535,
          "batch":{"url":"http://b","maxRequests":10000,"maxWaitMs":60000}})");
  EXPECT_EQ(s.timeout, 86'400'000ms);
  EXPECT_EQ(s.concurrency, 65'535u);
  EXPECT_EQ(s.batch->max_requests, 10'000u);
  const service low = parsed(
      R"({"flavours":[{"name":"std"}],"timeoutMs":1,"concurrency":1,"batch":{"url":"http://b","maxRequests":1,"maxWaitMs":1}})");
  EXPECT_EQ(low.timeout, 1ms);
  EXPECT_EQ(low.batch->max_wait, 1ms);
}

service full_service() {
  service s;
  s.name = "payments";
  s.namespace_ = "default";
  s.default_flavour = "green";
  s.flavours = {{"std", "http://payments-std.shop:8080/base"}, {"green", ""}, {"blue", ""}};
  s.timeout = 1234ms;
  s.concurrency = 77;
  batch_settings b;
  b.max_requests = 99;
  b.max_wait = 7ms;
  b.url = "http://[::1]:81/batch";
  s.batch = b;
  schedule sch;
  sch.flavours = {{"green", 70}, {"std", 30}, {"blue", 0}};
  sch.valid_until = clock::time_point(std::chrono::duration_cast<clock::duration>(
      std::chrono::nanoseconds(1'798'675'200'123'456'789LL)));
  s.traffic = sch;
  return s;
}

TEST(to_json, round_trips_every_field) {
  const service s = full_service();
  const std::string text = to_json(s);
  auto back = parse_service(s.name, text, defaults());
  ASSERT_TRUE(std::holds_alternative<service>(back)) << std::get<parse_error>(back).field;
  EXPECT_EQ(std::get<service>(back), s) << text;
  EXPECT_NE(text.find(R"("validUntil":"2026-12-31T00:00:00.123456789Z")"), std::string::npos)
      << text;
}

TEST(to_json, round_trips_a_minimal_service_without_taking_the_parsers_defaults) {
  service s;
  s.name = "x";
  s.namespace_ = "default";
  s.default_flavour = "a";
  s.flavours = {{"a", ""}};
  // Defaults of the parser differ from these: every field must be spelled out.
  const std::string text = to_json(s);
  auto back = parse_service("x", text, defaults());
  ASSERT_TRUE(std::holds_alternative<service>(back));
  EXPECT_EQ(std::get<service>(back), s) << text;
  EXPECT_EQ(text.find("batch"), std::string::npos);
  EXPECT_EQ(text.find("schedule"), std::string::npos);
}

TEST(to_json, schedule_round_trips_through_parse_schedule) {
  const service s = full_service();
  const std::string text = to_json(*s.traffic);
  auto back = parse_schedule(text, s);
  ASSERT_TRUE(std::holds_alternative<schedule>(back)) << text;
  EXPECT_EQ(std::get<schedule>(back), *s.traffic);

  schedule whole = *s.traffic;
  whole.valid_until = clock::time_point(std::chrono::seconds(1'798'675'200));
  EXPECT_EQ(
      to_json(whole),
      R"({"flavours":[{"name":"green","weight":70},{"name":"std","weight":30},{"name":"blue","weight":0}],"validUntil":"2026-12-31T00:00:00Z"})");
}

parse_error schedule_refused(std::string_view json) {
  auto r = parse_schedule(json, full_service());
  if (std::holds_alternative<schedule>(r)) {
    ADD_FAILURE() << "accepted: " << json;
    return {};
  }
  return std::get<parse_error>(r);
}

TEST(parse_schedule, every_failure_names_its_field) {
  struct bad_case {
    const char* json;
    const char* field;
  };
  const bad_case cases[] = {
      {"{", "body"},
      {"3", "body"},
      {R"({"validUntil":"2026-12-31T00:00:00Z"})", "flavours"},
      {R"({"flavours":[],"validUntil":"2026-12-31T00:00:00Z"})", "flavours"},
      {R"({"flavours":[{"name":"red","weight":1}],"validUntil":"2026-12-31T00:00:00Z"})",
       "flavours[0].name"},
      {R"({"flavours":[{"weight":1}],"validUntil":"2026-12-31T00:00:00Z"})", "flavours[0].name"},
      {R"({"flavours":[{"name":"std"}],"validUntil":"2026-12-31T00:00:00Z"})",
       "flavours[0].weight"},
      {R"({"flavours":[{"name":"std","weight":1},{"name":"std","weight":2}],"validUntil":"2026-12-31T00:00:00Z"})",
       "flavours[1].name"},
      {R"({"flavours":[{"name":"std","weight":-1}],"validUntil":"2026-12-31T00:00:00Z"})",
       "flavours[0].weight"},
      {R"({"flavours":[{"name":"std","weight":1000001}],"validUntil":"2026-12-31T00:00:00Z"})",
       "flavours[0].weight"},
      {R"({"flavours":[{"name":"std","weight":0.5}],"validUntil":"2026-12-31T00:00:00Z"})",
       "flavours[0].weight"},
      {R"({"flavours":[{"name":"std","weight":"1"}],"validUntil":"2026-12-31T00:00:00Z"})",
       "flavours[0].weight"},
      {R"({"flavours":[{"name":"std","weight":0},{"name":"green","weight":0}],"validUntil":"2026-12-31T00:00:00Z"})",
       "flavours"},
      {R"({"flavours":[{"name":"std","weight":1,"share":2}],"validUntil":"2026-12-31T00:00:00Z"})",
       "flavours[0].share"},
      {R"({"flavours":[{"name":"std","weight":1}]})", "validUntil"},
      {R"({"flavours":[{"name":"std","weight":1,"weight":2}],"validUntil":"2026-12-31T00:00:00Z"})",
       "weight"},
      {R"({"flavours":[{"name":"std","weight":1}],"validUntil":1798675200})", "validUntil"},
      {R"({"flavours":[{"name":"std","weight":1}],"validUntil":"2026-12-31","until":1})", "until"},
  };
  for (const auto& c : cases) {
    const parse_error e = schedule_refused(c.json);
    EXPECT_EQ(e.field, c.field) << c.json << " -> " << e.message;
    EXPECT_FALSE(e.message.empty()) << c.json;
  }
}

std::optional<clock::time_point> until_of(const std::string& valid_until) {
  auto r = parse_schedule(
      R"({"flavours":[{"name":"std","weight":1}],"validUntil":")" + valid_until + R"("})",
      full_service());
  if (auto* s = std::get_if<schedule>(&r))
    return s->valid_until;
  EXPECT_EQ(std::get<parse_error>(r).field, "validUntil");
  return std::nullopt;
}

TEST(parse_schedule, reads_rfc_3339_with_offsets_and_fractions) {
  const auto base = clock::time_point(std::chrono::seconds(1'798'675'200));
  EXPECT_EQ(until_of("2026-12-31T00:00:00Z"), base);
  EXPECT_EQ(until_of("2026-12-31t00:00:00z"), base);
  EXPECT_EQ(until_of("2026-12-31T02:30:00+02:30"), base);
  EXPECT_EQ(until_of("2026-12-30T19:00:00-05:00"), base);
  EXPECT_EQ(until_of("2026-12-31T00:00:00.5Z"), base + 500ms);
  EXPECT_EQ(until_of("2026-12-31T00:00:00.000001Z"), base + 1us);
  EXPECT_EQ(until_of("2026-12-31T00:00:00.1234567891Z"), base + 123'456'789ns);
  EXPECT_EQ(until_of("1970-01-01T00:00:00Z"), clock::time_point{});
  EXPECT_EQ(until_of("2028-02-29T00:00:00Z"), clock::time_point(std::chrono::seconds(1835395200)));
  for (const char* bad :
       {"", "2026-12-31", "2026-12-31T00:00:00", "2026-12-31 00:00:00Z", "2026-12-31T00:00Z",
        "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-12-32T00:00:00Z",
        "2026-12-31T24:00:00Z", "2026-12-31T00:60:00Z", "2026-12-31T00:00:00.Z",
        "2026-12-31T00:00:00+0200", "2026-12-31T00:00:00+24:00", "2026-12-31T00:00:00ZZ",
        "1969-12-31T23:59:59Z", "9999-12-31T00:00:00Z", "2026-1-31T00:00:00Z",
        "2026-12-31T00:00:00+02:00 "}) {
    EXPECT_FALSE(until_of(bad)) << bad;
  }
}

TEST(parse_schedule, accepts_a_zero_weight_beside_a_positive_one) {
  auto r = parse_schedule(
      R"({"flavours":[{"name":"std","weight":0},{"name":"green","weight":1000000}],"validUntil":"2026-12-31T00:00:00Z"})",
      full_service());
  ASSERT_TRUE(std::holds_alternative<schedule>(r));
  EXPECT_EQ(std::get<schedule>(r).flavours[1].weight, 1'000'000u);
}

TEST(target_base_url, uses_the_flavour_url_or_derives_one) {
  service s = full_service();
  service_defaults d = defaults();
  EXPECT_EQ(target_base_url(s, s.flavours[0], d), "http://payments-std.shop:8080/base");
  EXPECT_EQ(target_base_url(s, s.flavours[1], d), "http://payments-green.default");
  d.port = 8080;
  EXPECT_EQ(target_base_url(s, s.flavours[2], d), "http://payments-blue.default:8080");
}

TEST(schedule_valid_seconds, counts_down_and_goes_negative) {
  service s = full_service();
  const auto until = s.traffic->valid_until;
  EXPECT_NEAR(*schedule_valid_seconds(s, until - 90s), 90.0, 1e-6);
  EXPECT_NEAR(*schedule_valid_seconds(s, until + 1500ms), -1.5, 1e-6);
  s.traffic.reset();
  EXPECT_FALSE(schedule_valid_seconds(s, until));
}

// review: names may hold '.', and AMQP names are joined with '.': service "b.c" in namespace
// "a" and service "c" in namespace "a.b" (or service "x" with flavour "y.z" and service "x.y"
// with flavour "z") get the same flavour queue, so one's worker takes the other's requests and
// forwards them to its own target. Both definitions are accepted today.
// SLUICE_REVIEW_NOSKIP=1 runs it (and shows the clash).
TEST(service_names, two_accepted_services_never_share_a_flavour_queue) {
  // '.' in a service or flavour name would make namespace.service.flavour ambiguous: two
  // services sharing one queue, each worker forwarding the other's requests to its target.
  const auto one = parse_service("b.c", R"({"namespace":"a","flavours":[{"name":"f"}]})", {});
  const auto two = parse_service("c", R"({"namespace":"a.b","flavours":[{"name":"f"}]})", {});
  const auto three = parse_service("x", R"({"flavours":[{"name":"y.z"}]})", {});
  ASSERT_TRUE(std::holds_alternative<parse_error>(one));
  EXPECT_EQ(std::get<parse_error>(one).field, "name");
  ASSERT_TRUE(std::holds_alternative<service>(two)) << "a namespace may hold '.'";
  EXPECT_EQ(std::get<service>(two).queue("f"), "a.b.c.f");
  ASSERT_TRUE(std::holds_alternative<parse_error>(three));
  EXPECT_EQ(std::get<parse_error>(three).field, "flavours[0].name");
  EXPECT_FALSE(valid_name("a.b"));
  EXPECT_TRUE(valid_namespace("a.b"));
}

}  // namespace
}  // namespace sluice::services
