#include "sluice/relay/pending_queue.hpp"

#include <gtest/gtest.h>

namespace sluice::relay {
namespace {

using namespace std::chrono_literals;
using clock = pending_queue::clock;

std::vector<message> batch(int first, int count, std::size_t payload_bytes = 10) {
  std::vector<message> out;
  for (int i = first; i < first + count; ++i) {
    message m;
    m.created_ms = i;
    m.queue = "q";
    m.partition = "p";
    m.payload = std::string(payload_bytes, 'x');
    out.push_back(std::move(m));
  }
  return out;
}

TEST(relay_pending_queue, keeps_commit_order) {
  pending_queue q(100, 1 << 20);
  const auto now = clock::now();
  auto a = batch(0, 3);
  auto b = batch(3, 2);
  ASSERT_TRUE(q.push(a, now));
  ASSERT_TRUE(q.push(b, now));
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(q.pop().msg.created_ms, i);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(relay_pending_queue, refuses_a_whole_batch_beyond_the_item_bound) {
  pending_queue q(5, 1 << 20);
  auto a = batch(0, 4);
  auto b = batch(4, 2);
  ASSERT_TRUE(q.push(a, clock::now()));
  EXPECT_FALSE(q.push(b, clock::now()));
  EXPECT_EQ(q.size(), 4u) << "all or nothing";
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].payload.size(), 10u) << "a refused batch is left untouched";
}

TEST(relay_pending_queue, refuses_beyond_the_byte_bound) {
  const std::size_t one = pending_queue::cost(batch(0, 1, 1000)[0]);
  pending_queue q(1000, one * 3);
  auto a = batch(0, 3, 1000);
  auto b = batch(3, 1, 1000);
  ASSERT_TRUE(q.push(a, clock::now()));
  EXPECT_FALSE(q.push(b, clock::now()));
  q.pop();
  EXPECT_TRUE(q.push(b, clock::now()));
}

TEST(relay_pending_queue, drops_what_waited_too_long_from_the_front) {
  pending_queue q(100, 1 << 20);
  const auto t0 = clock::now();
  auto a = batch(0, 2);
  auto b = batch(2, 3);
  q.push(a, t0);
  q.push(b, t0 + 10s);
  EXPECT_EQ(q.drop_enqueued_before(t0 + 5s), 2u);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.front().msg.created_ms, 2);
  EXPECT_EQ(q.drop_enqueued_before(t0 + 5s), 0u);
}

}  // namespace
}  // namespace sluice::relay
