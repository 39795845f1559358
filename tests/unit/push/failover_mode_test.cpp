#include "sluice/push/failover_mode.hpp"

#include <gtest/gtest.h>

namespace sluice::push {
namespace {

// Puts a machine in `mode` through the transitions a running push path takes.
failover_mode in_mode(push_mode mode) {
  failover_mode m;
  if (mode == push_mode::failing_over)
    return m;
  m.on(push_event::db_available, 0);
  if (mode == push_mode::draining)
    return m;
  if (mode == push_mode::handing_back) {
    m.on(push_event::log_drained, 1);
    return m;
  }
  m.on(push_event::log_drained, 0);
  return m;
}

TEST(failover_mode, starts_failing_over_until_postgres_is_known_to_work) {
  failover_mode m;
  EXPECT_EQ(m.mode(), push_mode::failing_over);
  EXPECT_FALSE(m.db_healthy());
  // A drained log proves nothing about PostgreSQL.
  EXPECT_FALSE(m.on(push_event::log_drained, 0));
  EXPECT_EQ(m.mode(), push_mode::failing_over);
}

TEST(failover_mode, every_mode_is_reachable_as_the_helper_claims) {
  for (auto mode :
       {push_mode::failing_over, push_mode::draining, push_mode::handing_back, push_mode::direct})
    EXPECT_EQ(in_mode(mode).mode(), mode) << to_string(mode);
}

struct transition_case {
  push_mode from;
  push_event event;
  std::size_t appends_in_flight;
  push_mode to;
};

class failover_mode_transitions : public ::testing::TestWithParam<transition_case> {};

TEST_P(failover_mode_transitions, goes_where_the_table_says) {
  const auto c = GetParam();
  auto m = in_mode(c.from);
  const auto change = m.on(c.event, c.appends_in_flight);
  EXPECT_EQ(m.mode(), c.to);
  if (c.from == c.to) {
    EXPECT_FALSE(change);
  } else {
    ASSERT_TRUE(change);
    EXPECT_EQ(change->from, c.from);
    EXPECT_EQ(change->to, c.to);
  }
  EXPECT_EQ(m.db_healthy(), c.to != push_mode::failing_over);
}

using enum push_mode;
using enum push_event;
INSTANTIATE_TEST_SUITE_P(
    all, failover_mode_transitions,
    ::testing::Values(
        // failing_over: only PostgreSQL working again moves it.
        transition_case{failing_over, db_available, 0, draining},
        transition_case{failing_over, db_unavailable, 0, failing_over},
        transition_case{failing_over, log_drained, 0, failing_over},
        transition_case{failing_over, log_drained, 3, failing_over},
        // draining: empty log → direct, unless appends are still being written.
        transition_case{draining, log_drained, 0, direct},
        transition_case{draining, log_drained, 2, handing_back},
        transition_case{draining, db_unavailable, 0, failing_over},
        transition_case{draining, db_available, 0, draining},
        // handing_back: waits for the last appends to be replayed.
        transition_case{handing_back, log_drained, 1, handing_back},
        transition_case{handing_back, log_drained, 0, direct},
        transition_case{handing_back, db_unavailable, 0, failing_over},
        transition_case{handing_back, db_available, 0, handing_back},
        // direct: only a failure leaves it.
        transition_case{direct, db_unavailable, 0, failing_over},
        transition_case{direct, db_available, 0, direct},
        transition_case{direct, log_drained, 0, direct},
        transition_case{direct, log_drained, 5, direct}),
    [](const auto& param_info) {
      return std::string(to_string(param_info.param.from)) + "_" +
             to_string(param_info.param.event) + "_" +
             std::to_string(param_info.param.appends_in_flight);
    });

}  // namespace
}  // namespace sluice::push
