#include "sluice/buffer/segment_set.hpp"

#include "sluice/buffer/record_format.hpp"

#include <gtest/gtest.h>

namespace sluice::buffer::detail {
namespace {

constexpr std::uint64_t h = segment_header_size;

append_result appended(std::uint64_t segment, std::uint64_t begin, std::uint64_t end,
                       std::size_t records, std::int64_t created_ms = 1) {
  return {.ec = {},
          .segment = segment,
          .begin = begin,
          .end = end,
          .records = records,
          .first_created_ms = created_ms};
}

unreadable_range hole_at(std::uint64_t segment, std::uint64_t begin, std::uint64_t end,
                         std::uint64_t records, bool saved = true) {
  return {.segment = segment,
          .begin = begin,
          .end = end,
          .error = {},
          .records = records,
          .quarantined_bytes = 0,
          .saved = saved};
}

TEST(segment_set, first_append_opens_the_segment_and_counts_its_header_on_disk) {
  segment_set set;
  ASSERT_TRUE(set.apply_append(appended(1, h, h + 100, 2, 7)));
  EXPECT_EQ(set.size(), 1u);
  EXPECT_EQ(set.pending_records(), 2u);
  EXPECT_EQ(set.pending_bytes(), 100u);
  EXPECT_EQ(set.disk_bytes(), h + 100);
  EXPECT_EQ(set.first_unacked_created_ms(), 7);
  ASSERT_TRUE(set.apply_append(appended(1, h + 100, h + 150, 1, 9)));
  EXPECT_EQ(set.find(1)->first_created_ms, 7);
  EXPECT_EQ(set.disk_bytes(), h + 150);
}

TEST(segment_set, append_to_an_older_unknown_segment_counts_nothing) {
  segment_set set;
  ASSERT_TRUE(set.apply_append(appended(3, h, h + 10, 1)));
  EXPECT_FALSE(set.apply_append(appended(2, h, h + 10, 1)));
  EXPECT_EQ(set.pending_records(), 1u);
  EXPECT_EQ(set.find(2), nullptr);
}

TEST(segment_set, recovered_segments_are_sealed_and_count_what_was_not_acked) {
  segment_set set;
  recovered_segment r;
  r.id = 4;
  r.end = h + 300;
  r.records = 3;
  r.record_bytes = 300;
  r.acked_records = 1;
  r.acked_bytes = 100;
  set.add_recovered(r);
  EXPECT_TRUE(set.find(4)->sealed);
  EXPECT_EQ(set.pending_records(), 2u);
  EXPECT_EQ(set.pending_bytes(), 200u);
  EXPECT_EQ(set.disk_bytes(), h + 300);
}

TEST(segment_set, extents_start_at_the_cursor_and_skip_holes) {
  segment_set set;
  ASSERT_TRUE(set.apply_append(appended(1, h, h + 300, 3)));
  ASSERT_TRUE(set.apply_append(appended(2, h, h + 50, 1)));
  set.add_hole(hole_at(1, h + 100, h + 200, 1));
  EXPECT_EQ(set.pending_records(), 3u);
  EXPECT_EQ(set.pending_bytes(), 250u);

  const auto all = set.extents_after({1, 0});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].begin, h);
  EXPECT_EQ(all[0].end, h + 100);
  EXPECT_EQ(all[1].begin, h + 200);
  EXPECT_EQ(all[1].end, h + 300);
  EXPECT_EQ(all[2].segment, 2u);

  const auto later = set.extents_after({1, h + 150});
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].begin, h + 200);
  EXPECT_TRUE(set.extents_after({3, h}).empty());
}

TEST(segment_set, a_hole_never_takes_more_than_is_pending) {
  segment_set set;
  ASSERT_TRUE(set.apply_append(appended(1, h, h + 100, 1)));
  set.add_hole(hole_at(1, h, h + 500, 5, false));
  EXPECT_EQ(set.pending_records(), 0u);
  EXPECT_EQ(set.pending_bytes(), 0u);
  EXPECT_TRUE(set.find(1)->unreadable);
}

TEST(segment_set, front_is_drained_once_the_ack_passes_its_readable_end) {
  segment_set set;
  ASSERT_TRUE(set.apply_append(appended(1, h, h + 200, 2)));
  ASSERT_TRUE(set.apply_append(appended(2, h, h + 10, 1)));
  EXPECT_EQ(set.drained_front({1, h + 100}), nullptr);
  set.acknowledge(1, 100);
  EXPECT_EQ(set.pending_records(), 2u);

  set.add_hole(hole_at(1, h + 100, h + 200, 1));
  const segment_state* front = set.drained_front({1, h + 100});
  ASSERT_NE(front, nullptr);
  EXPECT_EQ(front->id, 1u);

  const segment_state gone = set.pop_front();
  EXPECT_EQ(gone.id, 1u);
  EXPECT_EQ(set.size(), 1u);
  EXPECT_EQ(set.pending_records(), 1u);
  EXPECT_EQ(set.disk_bytes(), h + 10);
  EXPECT_EQ(set.drained_front({2, h}), nullptr);
  EXPECT_NE(set.drained_front({2, h + 10}), nullptr);
  EXPECT_NE(set.drained_front({3, 0}), nullptr) << "the cursor is in a later segment";
}

TEST(segment_set, a_segment_that_is_all_holes_is_drained_whatever_the_ack) {
  segment_set set;
  ASSERT_TRUE(set.apply_append(appended(5, h, h + 40, 1)));
  set.add_hole(hole_at(5, h, h + 40, 1));
  EXPECT_NE(set.drained_front({0, 0}), nullptr);
}

}  // namespace
}  // namespace sluice::buffer::detail
