#include "sluice/buffer/read_cursor.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace sluice::buffer::detail {
namespace {

buffered_record record_at(std::uint64_t segment, std::uint64_t offset, std::uint32_t size,
                          std::int64_t created_ms) {
  buffered_record r;
  r.position = {segment, offset};
  r.size = size;
  r.msg.created_ms = created_ms;
  return r;
}

// A cursor at {1, 32} that handed out records of 10 bytes, created at 1, 2, ...
read_cursor with_handed_out(const std::vector<record_position>& positions,
                            std::optional<std::int64_t> head_created_ms = std::nullopt) {
  read_cursor cursor;
  cursor.reset({1, 32}, head_created_ms);
  std::int64_t created_ms = 1;
  for (const auto& p : positions)
    cursor.handed_out(record_at(p.segment, p.offset, 10, created_ms++));
  return cursor;
}

TEST(read_cursor, handing_out_moves_only_the_read_cursor) {
  read_cursor cursor = with_handed_out({{1, 32}, {1, 42}}, 7);
  EXPECT_EQ(cursor.read(), (record_position{1, 52}));
  EXPECT_EQ(cursor.ack(), (record_position{1, 32}));
  EXPECT_EQ(cursor.inflight_records(), 2u);
  EXPECT_EQ(cursor.oldest_created_ms(), 1);
}

TEST(read_cursor, acknowledge_takes_everything_up_to_the_position_in_order) {
  read_cursor cursor = with_handed_out({{1, 32}, {1, 42}, {2, 32}});
  std::vector<std::int64_t> acked;
  ASSERT_TRUE(cursor.acknowledge({1, 42},
                                 [&](const inflight_record& e) { acked.push_back(e.created_ms); }));
  EXPECT_EQ(acked, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(cursor.ack(), (record_position{1, 52}));
  EXPECT_EQ(cursor.inflight_records(), 1u);
  EXPECT_EQ(cursor.oldest_created_ms(), 3);
}

TEST(read_cursor, acknowledge_of_a_position_not_in_flight_changes_nothing) {
  read_cursor cursor = with_handed_out({{1, 32}});
  int calls = 0;
  EXPECT_FALSE(cursor.acknowledge({1, 35}, [&](const inflight_record&) { ++calls; }));
  EXPECT_FALSE(cursor.acknowledge({1, 42}, [&](const inflight_record&) { ++calls; }));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(cursor.inflight_records(), 1u);
  EXPECT_EQ(cursor.ack(), (record_position{1, 32}));
}

TEST(read_cursor, rewind_makes_the_records_in_flight_unread_again) {
  read_cursor cursor = with_handed_out({{1, 32}});
  cursor.set_unread_head_created_ms(9);
  cursor.rewind();
  EXPECT_EQ(cursor.read(), (record_position{1, 32}));
  EXPECT_EQ(cursor.inflight_records(), 0u);
  EXPECT_EQ(cursor.unread_head_created_ms(), 1);
  EXPECT_EQ(cursor.oldest_created_ms(), 1);
}

TEST(read_cursor, ack_at_least_never_moves_the_ack_cursor_back) {
  read_cursor cursor;
  cursor.reset({3, 100}, std::nullopt);
  cursor.ack_at_least({2, 500});
  EXPECT_EQ(cursor.ack(), (record_position{3, 100}));
  cursor.ack_at_least({3, 200});
  EXPECT_EQ(cursor.ack(), (record_position{3, 200}));
}

}  // namespace
}  // namespace sluice::buffer::detail
