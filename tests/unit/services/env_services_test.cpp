#include "sluice/services/env_services.hpp"

#include "sluice/config/loader.hpp"
#include "sluice/services/service_json.hpp"

#include <gtest/gtest.h>

namespace sluice::services {
namespace {

using namespace std::chrono_literals;

std::vector<service> from_env(const config::env_map& env) {
  return services_from_settings(config::load_settings(env));
}

// The message of the config_error, or a failure when nothing was thrown.
std::string refusal(const config::env_map& env) {
  try {
    from_env(env);
  } catch (const config::config_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

TEST(env_services, none_without_a_service_name) {
  EXPECT_TRUE(from_env({}).empty());
  EXPECT_TRUE(from_env({{"TARGET_SVC_NAMESPACE", "shop"}, {"TARGET_SVC_PORT", "8080"}}).empty());
}

TEST(env_services, router_consumer_setup) {
  const auto st = config::load_settings({{"TARGET_SVC_NAME", "payments"},
                                         {"TARGET_SVC_NAMESPACE", "shop"},
                                         {"TARGET_SVC_PORT", "8080"},
                                         {"TARGET_SVC_FLAVOURS", "green, std ,blue"},
                                         {"RPC_TIMEOUT_SEC", "15"},
                                         {"CONCURRENCY_PER_QUEUE", "4"}});
  const auto services = services_from_settings(st);
  ASSERT_EQ(services.size(), 1u);
  const service& s = services[0];
  EXPECT_EQ(s.name, "payments");
  EXPECT_EQ(s.namespace_, "shop");
  EXPECT_EQ(s.default_flavour, "green");
  ASSERT_EQ(s.flavours.size(), 3u);
  EXPECT_EQ(s.flavours[1].name, "std");
  EXPECT_EQ(s.timeout, 15'000ms);
  EXPECT_EQ(s.concurrency, 4u);
  EXPECT_FALSE(s.batch);
  EXPECT_EQ(s.source, service_source::env);
  const service_defaults d = defaults_from_settings(st);
  EXPECT_EQ(target_base_url(s, s.flavours[0], d), "http://payments-green.shop:8080");
  EXPECT_EQ(target_base_url(s, s.flavours[2], d), "http://payments-blue.shop:8080");
  EXPECT_EQ(s.exchange(), "shop.payments");
  EXPECT_EQ(s.queue("std"), "shop.payments.std");
}

TEST(env_services, router_consumer_setup_with_the_defaults) {
  const auto services = from_env({{"TARGET_SVC_NAME", "ml"}});
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].namespace_, "default");
  EXPECT_EQ(services[0].default_flavour, "std");
  EXPECT_EQ(services[0].timeout, 60'000ms);
  EXPECT_EQ(services[0].concurrency, 32u);
  const auto d = defaults_from_settings(config::load_settings({}));
  EXPECT_EQ(target_base_url(services[0], services[0].flavours[0], d), "http://ml-std.default");
}

TEST(env_services, enqueuer_dequeuer_setup) {
  const auto services = from_env({{"SERVICE_NAME", "resize"},
                                  {"DOWNSTREAM_URL", "http://127.0.0.1:9000/resize"},
                                  {"ENQUEUER_REPLY_TIMEOUT", "120"}});
  ASSERT_EQ(services.size(), 1u);
  const service& s = services[0];
  EXPECT_EQ(s.name, "resize");
  EXPECT_EQ(s.default_flavour, "default");
  ASSERT_EQ(s.flavours.size(), 1u);
  EXPECT_EQ(s.flavours[0].name, "default");
  EXPECT_EQ(s.flavours[0].url, "http://127.0.0.1:9000/resize");
  EXPECT_EQ(s.timeout, 120'000ms);
  EXPECT_FALSE(s.batch);
  EXPECT_EQ(s.source, service_source::env);
}

TEST(env_services, enqueuer_dequeuer_batch_mode) {
  const auto services = from_env({{"SERVICE_NAME", "resize"},
                                  {"DOWNSTREAM_URL", "http://img:9000"},
                                  {"BATCH_MODE", "true"},
                                  {"BATCH_DOWNSTREAM_URL", "http://img:9000/batch"},
                                  {"BATCH_SIZE", "25"},
                                  {"BATCH_MAX_WAIT_MS", "200"},
                                  {"RPC_TIMEOUT_SEC", "7"}});
  ASSERT_EQ(services.size(), 1u);
  const service& s = services[0];
  ASSERT_TRUE(s.batch);
  EXPECT_EQ(s.batch->max_requests, 25u);
  EXPECT_EQ(s.batch->max_wait, 200ms);
  EXPECT_EQ(s.batch->url, "http://img:9000/batch");
  EXPECT_EQ(s.timeout, 7'000ms) << "RPC_TIMEOUT_SEC without ENQUEUER_REPLY_TIMEOUT";
}

TEST(env_services, both_setups_give_two_services) {
  const auto services = from_env({{"TARGET_SVC_NAME", "payments"},
                                  {"SERVICE_NAME", "resize"},
                                  {"DOWNSTREAM_URL", "http://img:9000"}});
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0].name, "payments");
  EXPECT_EQ(services[1].name, "resize");
}

TEST(env_services, env_services_survive_the_json_round_trip) {
  const auto st = config::load_settings({{"SERVICE_NAME", "resize"},
                                         {"DOWNSTREAM_URL", "http://img:9000"},
                                         {"BATCH_MODE", "1"},
                                         {"BATCH_DOWNSTREAM_URL", "http://img:9000/batch"}});
  const service s = services_from_settings(st).at(0);
  auto back = parse_service(s.name, to_json(s), defaults_from_settings(st));
  ASSERT_TRUE(std::holds_alternative<service>(back));
  service b = std::get<service>(back);
  b.source = service_source::env;
  EXPECT_EQ(b, s);
}

TEST(env_services, refuses_combinations_that_cannot_work_naming_the_variable) {
  struct bad_case {
    config::env_map env;
    const char* variable;
  };
  const bad_case cases[] = {
      {{{"SERVICE_NAME", "resize"}}, "DOWNSTREAM_URL"},
      {{{"SERVICE_NAME", "resize"}, {"DOWNSTREAM_URL", "img:9000"}}, "DOWNSTREAM_URL"},
      {{{"SERVICE_NAME", "resize"}, {"DOWNSTREAM_URL", "https://img"}}, "DOWNSTREAM_URL"},
      {{{"SERVICE_NAME", "resize"}, {"DOWNSTREAM_URL", "http://img"}, {"BATCH_MODE", "1"}},
       "BATCH_DOWNSTREAM_URL"},
      {{{"SERVICE_NAME", "resize"},
        {"DOWNSTREAM_URL", "http://img"},
        {"BATCH_MODE", "1"},
        {"BATCH_DOWNSTREAM_URL", "http://img/b?x=1"}},
       "BATCH_DOWNSTREAM_URL"},
      {{{"SERVICE_NAME", "re size"}, {"DOWNSTREAM_URL", "http://img"}}, "SERVICE_NAME"},
      {{{"DOWNSTREAM_URL", "http://img"}}, "SERVICE_NAME"},
      {{{"BATCH_MODE", "1"}, {"BATCH_DOWNSTREAM_URL", "http://img/b"}}, "SERVICE_NAME"},
      {{{"TARGET_SVC_NAME", "pay/ments"}}, "TARGET_SVC_NAME"},
      {{{"TARGET_SVC_NAME", "payments"}, {"TARGET_SVC_NAMESPACE", "a b"}}, "TARGET_SVC_NAMESPACE"},
      {{{"TARGET_SVC_NAME", "payments"}, {"TARGET_SVC_FLAVOURS", "std,,green"}},
       "TARGET_SVC_FLAVOURS"},
      {{{"TARGET_SVC_NAME", "payments"}, {"TARGET_SVC_FLAVOURS", "std,green,std"}},
       "TARGET_SVC_FLAVOURS"},
      {{{"TARGET_SVC_NAME", "payments"}, {"TARGET_SVC_FLAVOURS", "std,"}}, "TARGET_SVC_FLAVOURS"},
      {{{"TARGET_SVC_NAME", "payments"},
        {"SERVICE_NAME", "payments"},
        {"DOWNSTREAM_URL", "http://img"}},
       "SERVICE_NAME"},
  };
  for (const auto& c : cases) {
    const std::string message = refusal(c.env);
    EXPECT_NE(message.find(c.variable), std::string::npos)
        << "expected " << c.variable << " in: " << message;
  }
}

TEST(env_services, defaults_follow_the_settings) {
  const auto d = defaults_from_settings(config::load_settings({{"TARGET_SVC_NAMESPACE", "shop"},
                                                               {"RPC_TIMEOUT_SEC", "9"},
                                                               {"CONCURRENCY_PER_QUEUE", "3"},
                                                               {"TARGET_SVC_PORT", "81"}}));
  EXPECT_EQ(d.namespace_, "shop");
  EXPECT_EQ(d.timeout, 9'000ms);
  EXPECT_EQ(d.concurrency, 3u);
  EXPECT_EQ(d.scheme, "http");
  EXPECT_EQ(d.port, std::optional<std::uint16_t>(81));
}

}  // namespace
}  // namespace sluice::services
