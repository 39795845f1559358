#include "sluice/push/pending_index.hpp"

#include <thread>

#include <gtest/gtest.h>

namespace sluice::push {
namespace {

using namespace std::chrono_literals;

message msg(std::string queue, std::optional<std::string> txid) {
  static uuid_v7_generator ids;
  message m{};
  m.id = ids.next();
  m.queue = std::move(queue);
  m.transaction_id = std::move(txid);
  return m;
}

TEST(pending_index, an_entry_goes_writing_written_stored_and_expires) {
  pending_index index(50ms, 100);
  const auto m = msg("q", "t");
  ASSERT_TRUE(index.add(m, pending_log::db, pending_state::writing));
  EXPECT_EQ(index.find("q", "t")->state, pending_state::writing);
  index.move_to(m, pending_log::failover);
  index.mark_written(m);
  EXPECT_EQ(index.find("q", "t")->state, pending_state::written);
  EXPECT_EQ(index.find("q", "t")->log, pending_log::failover);
  const uuid stored_as = msg("q", "other").id;
  index.committed(m, stored_as);
  ASSERT_TRUE(index.find("q", "t"));
  EXPECT_EQ(index.find("q", "t")->state, pending_state::stored);
  EXPECT_EQ(index.find("q", "t")->id, stored_as) << "the id PostgreSQL has, not the message's";
  std::this_thread::sleep_for(60ms);  // the ttl itself is what is tested
  index.add(msg("q", "later"), pending_log::db, pending_state::writing);  // expiry runs on add
  EXPECT_FALSE(index.find("q", "t"));
}

TEST(pending_index, keys_are_per_queue_and_taken_once) {
  pending_index index;
  const auto a = msg("q1", "t");
  const auto b = msg("q2", "t");
  const auto c = msg("q1", "t");
  EXPECT_TRUE(index.add(a, pending_log::db, pending_state::writing));
  EXPECT_TRUE(index.add(b, pending_log::db, pending_state::writing));
  EXPECT_FALSE(index.add(c, pending_log::db, pending_state::writing));
  EXPECT_FALSE(index.add(msg("q1", std::nullopt), pending_log::db, pending_state::writing));
  EXPECT_EQ(index.find("q1", "t")->id, a.id);
  index.remove(c);  // not c's entry: stays
  EXPECT_EQ(index.find("q1", "t")->id, a.id);
  index.remove(a);
  EXPECT_FALSE(index.find("q1", "t"));
}

TEST(pending_index, verify_drops_only_written_entries_the_log_no_longer_holds) {
  pending_index index;
  const auto kept = msg("q", "k");
  const auto lost = msg("q", "l");
  const auto writing = msg("q", "x");
  const auto qos0 = msg("q", "y");
  index.add(kept, pending_log::failover, pending_state::written);
  index.add(lost, pending_log::failover, pending_state::written);
  index.add(writing, pending_log::failover, pending_state::writing);
  index.add(qos0, pending_log::qos0, pending_state::written);
  index.begin_verify(pending_log::failover);
  EXPECT_EQ(index.find("q", "k")->state, pending_state::verifying) << "retries wait meanwhile";
  EXPECT_EQ(index.find("q", "x")->state, pending_state::writing);
  EXPECT_EQ(index.find("q", "y")->state, pending_state::written);
  index.verified(kept);
  index.end_verify(pending_log::failover, true);
  EXPECT_EQ(index.find("q", "k")->state, pending_state::written);
  EXPECT_FALSE(index.find("q", "l"));
  EXPECT_TRUE(index.find("q", "x"));
  EXPECT_TRUE(index.find("q", "y"));
}

TEST(pending_index, verify_that_could_not_read_through_drops_nothing) {
  pending_index index;
  const auto a = msg("q", "a");
  index.add(a, pending_log::failover, pending_state::written);
  index.begin_verify(pending_log::failover);
  index.end_verify(pending_log::failover, false);
  ASSERT_TRUE(index.find("q", "a"));
  EXPECT_EQ(index.find("q", "a")->state, pending_state::written);
}

TEST(pending_index, stored_entries_are_bounded_in_number) {
  pending_index index(1h, 3);
  for (int i = 0; i < 10; ++i) {
    const auto m = msg("q", "t" + std::to_string(i));
    index.add(m, pending_log::db, pending_state::writing);
    index.committed(m, m.id);
  }
  EXPECT_LE(index.size(), 3u);
  EXPECT_TRUE(index.find("q", "t9"));
  EXPECT_FALSE(index.find("q", "t0"));
}

}  // namespace
}  // namespace sluice::push
