// partition_gate driven through every transition of its table (partition_gate.hpp).
#include "sluice/delivery/partition_gate.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

using step = partition_gate::step;
using result = partition_gate::result;

TEST(partition_gate, a_free_partition_runs_its_first_message_at_once) {
  partition_gate g;
  EXPECT_EQ(g.arrive("p", 1, false), step::deliver);
  EXPECT_TRUE(g.busy("p"));
  EXPECT_FALSE(g.blocked("p"));
  // Other partitions go on.
  EXPECT_EQ(g.arrive("q", 2, false), step::deliver);
}

TEST(partition_gate, later_messages_wait_in_arrival_order) {
  partition_gate g;
  ASSERT_EQ(g.arrive("p", 1, false), step::deliver);
  EXPECT_FALSE(g.arrive("p", 2, false));
  EXPECT_FALSE(g.arrive("p", 3, false));
  EXPECT_EQ(g.waiting("p"), 2u);
  EXPECT_EQ(g.stats().queued, 2u);

  auto a = g.finish("p", result::done);
  ASSERT_TRUE(a.next);
  EXPECT_EQ(a.next->t, 2u);
  EXPECT_EQ(a.next->what, step::deliver);
  EXPECT_TRUE(a.abandon.empty());
  a = g.finish("p", result::done);
  ASSERT_TRUE(a.next);
  EXPECT_EQ(a.next->t, 3u);
  a = g.finish("p", result::done);
  EXPECT_FALSE(a.next);
  EXPECT_FALSE(g.busy("p"));
  // Free again: the next one runs at once.
  EXPECT_EQ(g.arrive("p", 4, false), step::deliver);
}

TEST(partition_gate, a_parked_head_blocks_and_the_line_is_parked_behind_it) {
  partition_gate g;
  ASSERT_EQ(g.arrive("p", 1, false), step::deliver);
  ASSERT_FALSE(g.arrive("p", 2, false));
  ASSERT_FALSE(g.arrive("p", 3, false));
  auto a = g.finish("p", result::parked);
  EXPECT_TRUE(g.blocked("p"));
  EXPECT_EQ(g.stats().blocked, 1u);
  ASSERT_TRUE(a.next);
  EXPECT_EQ(a.next->t, 2u);
  EXPECT_EQ(a.next->what, step::park_behind);
  a = g.finish("p", result::done);
  ASSERT_TRUE(a.next);
  EXPECT_EQ(a.next->t, 3u);
  EXPECT_EQ(a.next->what, step::park_behind);
  a = g.finish("p", result::done);
  EXPECT_FALSE(a.next);
  // New arrivals of a blocked partition are parked behind at once; others are not affected.
  EXPECT_EQ(g.arrive("p", 4, false), step::park_behind);
  EXPECT_EQ(g.arrive("q", 5, false), step::deliver);
}

TEST(partition_gate, a_released_head_is_delivered_although_blocked) {
  partition_gate g({"p"});
  EXPECT_TRUE(g.blocked("p"));
  EXPECT_EQ(g.arrive("p", 1, true), step::deliver);
  // Arrivals behind it wait, and are parked behind while the partition stays blocked.
  ASSERT_FALSE(g.arrive("p", 2, false));
  auto a = g.finish("p", result::done);  // release_next() found another one
  EXPECT_TRUE(g.blocked("p"));
  ASSERT_TRUE(a.next);
  EXPECT_EQ(a.next->what, step::park_behind);
  g.finish("p", result::done);
  // That released one comes back and is delivered.
  EXPECT_EQ(g.arrive("p", 3, true), step::deliver);
}

TEST(partition_gate, the_last_released_message_unblocks_the_partition) {
  partition_gate g({"p"});
  ASSERT_EQ(g.arrive("p", 1, true), step::deliver);
  ASSERT_FALSE(g.arrive("p", 2, false));
  const auto a = g.finish("p", result::released_none);
  EXPECT_FALSE(g.blocked("p"));
  EXPECT_EQ(g.stats().unblocked, 1u);
  ASSERT_TRUE(a.next);
  EXPECT_EQ(a.next->t, 2u);
  EXPECT_EQ(a.next->what, step::deliver);
}

TEST(partition_gate, a_released_head_that_fails_again_keeps_it_blocked) {
  partition_gate g({"p"});
  ASSERT_EQ(g.arrive("p", 1, true), step::deliver);
  const auto a = g.finish("p", result::parked);
  EXPECT_FALSE(a.next);
  EXPECT_TRUE(g.blocked("p"));
  EXPECT_EQ(g.stats().blocked, 0u);  // it already was
}

TEST(partition_gate, an_abandoned_message_takes_its_line_back_in_order) {
  partition_gate g;
  ASSERT_EQ(g.arrive("p", 1, false), step::deliver);
  ASSERT_FALSE(g.arrive("p", 2, false));
  ASSERT_FALSE(g.arrive("p", 3, false));
  const auto a = g.finish("p", result::abandoned);
  EXPECT_FALSE(a.next);
  EXPECT_EQ(a.abandon, (std::vector<partition_gate::ticket>{2, 3}));
  EXPECT_FALSE(g.busy("p"));
  EXPECT_FALSE(g.blocked("p"));
  EXPECT_EQ(g.stats().abandoned, 2u);
  // The redelivered head starts afresh.
  EXPECT_EQ(g.arrive("p", 4, false), step::deliver);
}

TEST(partition_gate, abandoning_keeps_a_block) {
  partition_gate g({"p"});
  ASSERT_EQ(g.arrive("p", 1, true), step::deliver);
  g.finish("p", result::abandoned);
  EXPECT_TRUE(g.blocked("p"));
  EXPECT_EQ(g.arrive("p", 2, false), step::park_behind);
}

TEST(partition_gate, a_released_message_waiting_in_line_is_delivered_in_its_turn) {
  partition_gate g({"p"});
  ASSERT_EQ(g.arrive("p", 1, false), step::park_behind);
  ASSERT_FALSE(g.arrive("p", 2, true));
  const auto a = g.finish("p", result::done);
  ASSERT_TRUE(a.next);
  EXPECT_EQ(a.next->t, 2u);
  EXPECT_EQ(a.next->what, step::deliver);
}

TEST(partition_gate, a_finish_without_a_start_is_ignored) {
  partition_gate g;
  const auto a = g.finish("nobody", result::parked);
  EXPECT_FALSE(a.next);
  EXPECT_FALSE(g.blocked("nobody"));
}

}  // namespace
}  // namespace sluice::delivery
