#include "sluice/buffer/ack_store.hpp"

#include <gtest/gtest.h>

#include "buffer_test_support.hpp"

namespace sluice::buffer::detail {
namespace {

using namespace test;

TEST(ack_store, offers_while_a_store_is_queued_fold_into_it) {
  temp_dir dir;
  ack_store store;
  ASSERT_FALSE(store.open(dir.path()));
  EXPECT_TRUE(store.offer({1, 100}));
  EXPECT_FALSE(store.offer({1, 200}));
  EXPECT_FALSE(store.offer({2, 50}));
  ASSERT_FALSE(store.store_newest());
  EXPECT_EQ(load_ack_cursor(dir.path()), (record_position{2, 50}));
  EXPECT_TRUE(store.offer({3, 10})) << "the queued store ran, so the next offer queues one";
  store.close();
}

}  // namespace
}  // namespace sluice::buffer::detail
