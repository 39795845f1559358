#include "sluice/amqp/ack_window.hpp"

#include <ostream>

#include <gtest/gtest.h>

namespace sluice::amqp {
namespace {

using frames = std::vector<ack_window::ack_frame>;

}  // namespace

void PrintTo(const ack_window::ack_frame& f, std::ostream* os) {
  *os << "{" << f.delivery_tag << (f.multiple ? ", multiple}" : "}");
}

namespace {

ack_window delivered(std::initializer_list<std::uint64_t> tags) {
  ack_window w;
  for (const auto t : tags) {
    w.delivered(t);
  }
  return w;
}

TEST(ack_window, a_run_of_acks_from_the_oldest_tag_leaves_as_one_multiple_ack) {
  auto w = delivered({1, 2, 3, 4});
  EXPECT_TRUE(w.ack(2));
  EXPECT_TRUE(w.ack(1));
  EXPECT_TRUE(w.ack(3));
  EXPECT_TRUE(w.has_acks());
  EXPECT_EQ(w.take(), (frames{{3, true}}));
  EXPECT_FALSE(w.has_acks());
  EXPECT_EQ(w.tracked(), 1U);  // 4 is still being worked on
  EXPECT_TRUE(w.take().empty());
}

TEST(ack_window, a_single_ack_is_not_sent_as_multiple) {
  auto w = delivered({7, 8});
  EXPECT_TRUE(w.ack(7));
  EXPECT_EQ(w.take(), (frames{{7, false}}));
}

TEST(ack_window, acks_behind_an_unsettled_tag_leave_one_by_one_and_are_not_held) {
  // A held ack would count against the prefetch until the slow delivery ends.
  auto w = delivered({1, 2, 3, 4, 5});
  EXPECT_TRUE(w.ack(3));
  EXPECT_TRUE(w.ack(5));
  EXPECT_EQ(w.take(), (frames{{3, false}, {5, false}}));
  // Once 1 and 2 are acked, they leave as one frame; the already acked 3 leaves the window
  // with them, and 4 (open) bounds the run.
  EXPECT_TRUE(w.ack(2));
  EXPECT_TRUE(w.ack(1));
  EXPECT_EQ(w.take(), (frames{{2, true}}));
  EXPECT_EQ(w.tracked(), 1U);  // 4 open; 5 left the window with its own frame
  EXPECT_TRUE(w.ack(4));
  EXPECT_EQ(w.take(), (frames{{4, false}}));
  EXPECT_EQ(w.tracked(), 0U);
}

TEST(ack_window, a_nack_in_the_run_is_covered_without_being_acked_twice) {
  auto w = delivered({1, 2, 3});
  EXPECT_TRUE(w.ack(1));
  w.settled(2);  // nacked directly: no longer outstanding on the broker
  EXPECT_TRUE(w.ack(3));
  EXPECT_EQ(w.take(), (frames{{3, true}}));
}

TEST(ack_window, the_frame_names_the_last_ack_of_the_run_not_a_nack_after_it) {
  auto w = delivered({1, 2, 3});
  EXPECT_TRUE(w.ack(1));
  EXPECT_TRUE(w.ack(2));
  w.settled(3);
  EXPECT_EQ(w.take(), (frames{{2, true}}));
  EXPECT_EQ(w.tracked(), 0U);
}

TEST(ack_window, a_run_of_only_nacked_tags_sends_nothing) {
  auto w = delivered({1, 2, 3});
  w.settled(1);
  w.settled(2);
  EXPECT_FALSE(w.has_acks());
  EXPECT_TRUE(w.take().empty());
  EXPECT_TRUE(w.ack(3));
  // 1 and 2 are no longer outstanding: a single ack of 3 is all it takes.
  EXPECT_EQ(w.take(), (frames{{3, false}}));
}

TEST(ack_window, a_settle_after_a_recorded_ack_withdraws_the_ack) {
  auto w = delivered({1});
  EXPECT_TRUE(w.ack(1));
  w.settled(1);
  EXPECT_FALSE(w.has_acks());
  EXPECT_TRUE(w.take().empty());
}

// A consumer that only nacks or rejects (malformed messages, PostgreSQL away so every delivery
// goes back) records no ack, so no take() ever runs: settled tags must not pile up meanwhile.
TEST(ack_window, tags_settled_without_any_ack_do_not_accumulate) {
  ack_window w;
  for (std::uint64_t tag = 1; tag <= 10'000; ++tag) {
    w.delivered(tag);
    w.settled(tag);
  }
  EXPECT_EQ(w.tracked(), 0U);
  EXPECT_TRUE(w.take().empty());
}

// One delivery that is never settled (held for long, or settled outside the window) must not make
// the window keep everything delivered after it.
TEST(ack_window, tags_settled_behind_a_stuck_one_do_not_accumulate) {
  ack_window w;
  w.delivered(1);
  for (std::uint64_t tag = 2; tag <= 10'000; ++tag) {
    w.delivered(tag);
    if (tag % 2 == 0) {
      EXPECT_TRUE(w.ack(tag));
    } else {
      w.settled(tag);
    }
    if (tag % 100 == 0) {
      EXPECT_EQ(w.take().size(), 50U);
    }
  }
  EXPECT_EQ(w.tracked(), 1U);
  EXPECT_TRUE(w.ack(1));
  EXPECT_EQ(w.take(), (frames{{1, false}}));
  EXPECT_EQ(w.tracked(), 0U);
}

// basic.ack/basic.nack with multiple=true sent directly settle every tag up to theirs: they must
// not stay open in the window, blocking every later run and keeping what follows.
TEST(ack_window, a_direct_multiple_settle_releases_every_tag_up_to_it) {
  auto w = delivered({1, 2, 3, 4, 5});
  w.settled_through(3);
  EXPECT_EQ(w.tracked(), 2U);
  EXPECT_FALSE(w.ack(2));
  EXPECT_TRUE(w.ack(4));
  EXPECT_TRUE(w.ack(5));
  EXPECT_EQ(w.take(), (frames{{5, true}}));
  EXPECT_EQ(w.tracked(), 0U);
}

TEST(ack_window, unknown_or_twice_acked_tags_are_refused_for_a_direct_send) {
  auto w = delivered({5});
  EXPECT_FALSE(w.ack(4));
  EXPECT_FALSE(w.ack(6));
  EXPECT_TRUE(w.ack(5));
  EXPECT_FALSE(w.ack(5));
  EXPECT_EQ(w.take(), (frames{{5, false}}));
  EXPECT_FALSE(w.ack(5));
}

TEST(ack_window, clear_forgets_every_tag_of_a_closed_channel) {
  auto w = delivered({1, 2});
  EXPECT_TRUE(w.ack(1));
  w.clear();
  EXPECT_FALSE(w.has_acks());
  EXPECT_TRUE(w.take().empty());
  EXPECT_FALSE(w.ack(2));
}

// Restarting the window there would drop the recorded ack of 10 (never sent) and forget 11, still
// outstanding: a later multiple ack past it would ack it unhandled.
TEST(ack_window, a_tag_that_does_not_grow_ends_coalescing_and_keeps_the_recorded_acks) {
  auto w = delivered({10, 11});
  EXPECT_TRUE(w.ack(10));
  w.delivered(3);
  w.delivered(4);
  EXPECT_TRUE(w.has_acks());
  EXPECT_FALSE(w.ack(3));
  EXPECT_FALSE(w.ack(4));
  EXPECT_FALSE(w.ack(11));
  EXPECT_EQ(w.take(), (frames{{10, false}}));
  EXPECT_EQ(w.tracked(), 0U);
  w.delivered(12);
  EXPECT_FALSE(w.ack(12));
}

}  // namespace
}  // namespace sluice::amqp
