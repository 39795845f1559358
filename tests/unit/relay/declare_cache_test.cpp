#include "sluice/relay/declare_cache.hpp"

#include <gtest/gtest.h>

namespace sluice::relay {
namespace {

using namespace std::chrono_literals;

const int conn_a = 1;
const int conn_b = 2;

TEST(relay_declare_cache, declarations_live_as_long_as_their_connection) {
  declare_cache c;
  EXPECT_TRUE(c.sync(1, &conn_a));
  c.insert("orders", queue_mode::queue);
  c.insert("news", queue_mode::broadcast);
  EXPECT_FALSE(c.sync(1, &conn_a));
  EXPECT_TRUE(c.contains("orders", queue_mode::queue));
  EXPECT_TRUE(c.contains("news", queue_mode::broadcast));
  EXPECT_FALSE(c.contains("orders", queue_mode::broadcast));

  EXPECT_TRUE(c.sync(2, &conn_b));
  EXPECT_FALSE(c.contains("orders", queue_mode::queue));
  EXPECT_FALSE(c.contains("news", queue_mode::broadcast));
}

TEST(relay_declare_cache, a_new_connection_object_counts_even_before_the_client_counts_it) {
  declare_cache c;
  c.sync(1, &conn_a);
  c.insert("orders", queue_mode::queue);
  EXPECT_TRUE(c.sync(1, &conn_b));
  EXPECT_FALSE(c.contains("orders", queue_mode::queue));
  EXPECT_TRUE(c.is_current(1, &conn_b));
  EXPECT_FALSE(c.is_current(2, &conn_b));
  EXPECT_FALSE(c.is_current(1, &conn_a));
}

TEST(relay_declare_cache, forget_queues_keeps_exchanges_forget_all_does_not) {
  declare_cache c;
  c.sync(1, &conn_a);
  c.insert("orders", queue_mode::queue);
  c.insert("news", queue_mode::broadcast);
  c.forget_queues();
  EXPECT_FALSE(c.contains("orders", queue_mode::queue));
  EXPECT_TRUE(c.contains("news", queue_mode::broadcast));
  c.forget_all();
  EXPECT_FALSE(c.contains("news", queue_mode::broadcast));
  EXPECT_EQ(c.generation(), 1u);
}

TEST(relay_declare_cache, a_refusal_runs_until_its_time_and_is_then_forgotten) {
  declare_cache c;
  const auto t0 = declare_cache::clock::now();
  EXPECT_FALSE(c.refused("orders", queue_mode::queue, t0));
  c.refuse("orders", queue_mode::queue, t0 + 10s);
  EXPECT_TRUE(c.refused("orders", queue_mode::queue, t0 + 9s));
  EXPECT_FALSE(c.refused("orders", queue_mode::broadcast, t0 + 9s));
  EXPECT_FALSE(c.refused("other", queue_mode::queue, t0 + 9s));
  EXPECT_EQ(c.refusals(), 1u);
  EXPECT_FALSE(c.refused("orders", queue_mode::queue, t0 + 10s));
  EXPECT_EQ(c.refusals(), 0u);
}

TEST(relay_declare_cache, refusals_outlive_a_reconnect) {
  declare_cache c;
  const auto t0 = declare_cache::clock::now();
  c.sync(1, &conn_a);
  c.refuse("orders", queue_mode::queue, t0 + 10s);
  c.sync(2, &conn_b);
  EXPECT_TRUE(c.refused("orders", queue_mode::queue, t0 + 1s));
}

}  // namespace
}  // namespace sluice::relay
