#include "sluice/worker/flavour_consumer.hpp"
#include "sluice/worker/worker_service.hpp"

#include <gtest/gtest.h>

namespace sluice::worker {
namespace {

std::shared_ptr<const services::service> payments() {
  services::service s;
  s.name = "payments";
  s.namespace_ = "shop";
  s.concurrency = 7;
  s.timeout = std::chrono::milliseconds(1'500);
  services::flavour std_flavour;
  std_flavour.name = "std";
  std_flavour.url = "http://10.0.0.1:8080/v1";
  services::flavour green;
  green.name = "green";
  s.flavours = {std_flavour, green};
  s.default_flavour = "std";
  return std::make_shared<const services::service>(s);
}

TEST(consumer_config, one_per_flavour_with_queue_prefetch_and_target) {
  services::service_defaults d;
  d.port = 9000;
  const auto configs = worker_service::configs_of(payments(), d);
  ASSERT_EQ(configs.size(), 2u);
  EXPECT_EQ(configs[0].queue, "shop.payments.std");
  EXPECT_EQ(configs[0].prefetch, 7);
  EXPECT_EQ(configs[0].timeout, std::chrono::milliseconds(1'500));
  EXPECT_EQ(configs[0].target.host, "10.0.0.1");
  EXPECT_EQ(configs[0].target.port, 8080);
  EXPECT_EQ(configs[0].target.base_path, "/v1");
  EXPECT_TRUE(configs[0].target_error.empty());
  // No URL: the derived one, <scheme>://<service>-<flavour>.<namespace>[:port].
  EXPECT_EQ(configs[1].queue, "shop.payments.green");
  EXPECT_EQ(configs[1].target.host, "payments-green.shop");
  EXPECT_EQ(configs[1].target.port, 9000);
  EXPECT_FALSE(configs[1].batch);
}

TEST(consumer_config, batch_mode_calls_the_batch_url) {
  auto s = *payments();
  services::batch_settings b;
  b.max_requests = 5;
  b.max_wait = std::chrono::milliseconds(20);
  b.url = "http://batcher:7000/batch";
  s.batch = b;
  const auto configs = worker_service::configs_of(std::make_shared<const services::service>(s), {});
  ASSERT_EQ(configs.size(), 2u);
  ASSERT_TRUE(configs[0].batch);
  EXPECT_EQ(configs[0].batch->max_requests, 5u);
  EXPECT_EQ(configs[0].batch_url.host, "batcher");
  EXPECT_EQ(configs[0].batch_url.port, 7000);
  EXPECT_EQ(configs[0].batch_url.base_path, "/batch");
  EXPECT_TRUE(configs[0].target_error.empty());
}

TEST(consumer_config, an_unusable_url_is_an_error_to_answer_not_a_crash) {
  auto s = *payments();
  s.flavours[0].url = "https://secure.example/";
  const auto configs = worker_service::configs_of(std::make_shared<const services::service>(s), {});
  EXPECT_FALSE(configs[0].target_error.empty());
  EXPECT_TRUE(configs[1].target_error.empty());
}

TEST(consumer_config, what_needs_a_restart) {
  const auto a = worker_service::configs_of(payments(), {});
  auto b = worker_service::configs_of(payments(), {});
  EXPECT_TRUE(a[0].same_as(b[0]));
  b[0].prefetch = 8;
  EXPECT_FALSE(a[0].same_as(b[0]));
  b = worker_service::configs_of(payments(), {});
  b[0].target.base_path = "/v2";
  EXPECT_FALSE(a[0].same_as(b[0]));
  b = worker_service::configs_of(payments(), {});
  b[0].batch = batch_limits{};
  EXPECT_FALSE(a[0].same_as(b[0]));
  EXPECT_TRUE(worker_service::configs_of(nullptr, {}).empty());
}

}  // namespace
}  // namespace sluice::worker
