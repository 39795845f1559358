#include "sluice/buffer/failed_retry.hpp"

#include "sluice/buffer/failed_store.hpp"
#include "sluice/buffer/log_layout.hpp"

#include <gtest/gtest.h>

#include "buffer_test_support.hpp"

namespace sluice::buffer::detail {
namespace {

using namespace test;

std::vector<message> in_queue(std::string queue, int first, int count) {
  std::vector<message> out;
  for (int i = first; i < first + count; ++i)
    out.push_back(make_message(i, queue));
  return out;
}

TEST(failed_retry, unfiltered_plan_takes_whole_files_in_id_order_up_to_the_batch) {
  temp_dir dir;
  ASSERT_FALSE(write_failed_file(dir.path(), 1, in_queue("a", 0, 2), "constraint", 1));
  ASSERT_FALSE(write_failed_file(dir.path(), 2, in_queue("a", 2, 2), "constraint", 1));
  ASSERT_FALSE(write_failed_file(dir.path(), 3, in_queue("a", 4, 2), "constraint", 1));
  retry_filter filter;
  filter.max_records = 3;
  const retry_plan plan = plan_retry(dir.path(), filter);
  ASSERT_FALSE(plan.ec);
  ASSERT_EQ(plan.messages.size(), 3u);
  EXPECT_EQ(plan.messages[0].created_ms, make_message(0, "a").created_ms);
  EXPECT_EQ(plan.messages[2].created_ms, make_message(2, "a").created_ms);
  ASSERT_EQ(plan.changes.size(), 2u);
  EXPECT_TRUE(plan.changes[0].keep.empty());
  EXPECT_EQ(plan.changes[1].keep.size(), 1u);
}

TEST(failed_retry, filtered_plan_counts_what_it_leaves_and_keeps_the_rest_of_a_file) {
  temp_dir dir;
  std::vector<message> mixed = in_queue("a", 0, 2);
  for (auto& m : in_queue("b", 2, 3))
    mixed.push_back(std::move(m));
  ASSERT_FALSE(write_failed_file(dir.path(), 1, mixed, "constraint", 1));
  retry_filter filter;
  filter.queue = "b";
  filter.max_records = 2;
  const retry_plan plan = plan_retry(dir.path(), filter);
  ASSERT_EQ(plan.messages.size(), 2u);
  EXPECT_EQ(plan.remaining, 1u);
  ASSERT_EQ(plan.changes.size(), 1u);
  EXPECT_EQ(plan.changes[0].keep.size(), 3u);

  const std::uint64_t before = fs::file_size(plan.changes[0].path);
  const std::uint64_t freed = apply_retry(dir.path(), plan);
  EXPECT_GT(freed, 0u);
  EXPECT_EQ(before - freed, fs::file_size(plan.changes[0].path));
  const failed_file left = read_failed_file(1, plan.changes[0].path);
  EXPECT_FALSE(left.error);
  ASSERT_EQ(left.records.size(), 3u);
  EXPECT_EQ(left.records[2].msg.queue, "b");
}

TEST(failed_retry, applying_a_plan_that_took_a_whole_file_removes_it) {
  temp_dir dir;
  ASSERT_FALSE(write_failed_file(dir.path(), 7, in_queue("a", 0, 2), "constraint", 1));
  retry_filter filter;
  const retry_plan plan = plan_retry(dir.path(), filter);
  ASSERT_EQ(plan.changes.size(), 1u);
  const std::uint64_t size = fs::file_size(plan.changes[0].path);
  EXPECT_EQ(apply_retry(dir.path(), plan), size);
  EXPECT_TRUE(files_with_suffix(dir.path() / layout::failed_dir, ".failed").empty());
}

}  // namespace
}  // namespace sluice::buffer::detail
