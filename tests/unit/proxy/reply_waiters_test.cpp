// Every transition of the wait table, with the loop driven by the test and replies handed in
// directly (no broker).
#include "sluice/proxy/reply_waiters.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

namespace sluice::proxy {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = reply_waiters::clock;

rpc::rpc_reply reply_with(int status, std::string body) {
  rpc::rpc_reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

struct fixture : ::testing::Test {
  asio::io_context io;
  reply_waiters table{reply_waiters::limits{3, 1000}};
  std::optional<wait_outcome> outcome;

  // Starts the wait; run the loop to let it finish.
  void wait_for(const std::shared_ptr<waiter>& w, http::client_watch* client = nullptr) {
    asio::co_spawn(
        io,
        [this, w, client]() -> asio::awaitable<void> {
          outcome = co_await table.wait(w, client);
          table.remove(w);
        },
        asio::detached);
  }
};

TEST_F(fixture, a_reply_before_the_deadline_completes_its_waiter) {
  auto w = table.add("c1", 10, clock::now() + 10s);
  ASSERT_TRUE(w);
  EXPECT_EQ(table.pending(), 1u);
  EXPECT_EQ(table.pending_bytes(), 10u);
  wait_for(w);
  io.poll();
  EXPECT_FALSE(outcome) << "still waiting";
  EXPECT_TRUE(table.deliver("c1", reply_with(201, "made")));
  io.run_for(1s);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, wait_outcome::replied);
  EXPECT_EQ(w->reply->status, 201);
  EXPECT_EQ(w->reply->body, "made");
  EXPECT_EQ(table.pending(), 0u);
  EXPECT_EQ(table.pending_bytes(), 0u);
  EXPECT_EQ(table.late_replies(), 0u);
}

TEST_F(fixture, the_deadline_first_times_out_and_the_reply_after_it_is_late) {
  const auto started = clock::now();
  auto w = table.add("c1", 10, started + 30ms);
  wait_for(w);
  io.run_for(2s);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, wait_outcome::timed_out);
  EXPECT_GE(clock::now() - started, 30ms);
  EXPECT_EQ(table.pending(), 0u);
  EXPECT_FALSE(table.deliver("c1", reply_with(200, "too late")));
  EXPECT_EQ(table.late_replies(), 1u);
}

TEST_F(fixture, a_client_that_leaves_ends_the_wait_and_frees_the_entry) {
  http::client_watch client;
  auto w = table.add("c1", 10, clock::now() + 10s);
  wait_for(w, &client);
  io.poll();
  EXPECT_FALSE(outcome);
  client.close();
  io.run_for(1s);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, wait_outcome::disconnected);
  EXPECT_EQ(table.pending(), 0u);
  EXPECT_FALSE(table.deliver("c1", reply_with(200, "nobody listens")));
  EXPECT_EQ(table.late_replies(), 1u);
}

TEST_F(fixture, a_client_gone_before_the_wait_starts_is_noticed_at_once) {
  http::client_watch client;
  client.close();
  auto w = table.add("c1", 10, clock::now() + 10s);
  wait_for(w, &client);
  io.run_for(1s);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, wait_outcome::disconnected);
}

TEST_F(fixture, a_publish_failure_ends_the_wait_with_its_response) {
  auto w = table.add("c1", 10, clock::now() + 10s);
  wait_for(w);
  io.poll();
  table.fail("c1", http::error_response(503, "broker_unavailable", "nacked"));
  io.run_for(1s);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, wait_outcome::failed);
  EXPECT_EQ(w->failure->status, 503);
  table.fail("c1", http::error_response(503, "x", "gone"));  // no waiter: nothing happens
}

TEST_F(fixture, a_reply_for_no_waiter_is_late_and_a_second_reply_too) {
  EXPECT_FALSE(table.deliver("never-registered", reply_with(200, "")));
  auto w = table.add("c1", 0, clock::now() + 10s);
  EXPECT_TRUE(table.deliver("c1", reply_with(200, "first")));
  EXPECT_FALSE(table.deliver("c1", reply_with(200, "redelivered duplicate")));
  EXPECT_EQ(w->reply->body, "first");
  EXPECT_EQ(table.late_replies(), 2u);
}

TEST_F(fixture, the_entry_bound_refuses_until_one_is_freed) {
  std::vector<std::shared_ptr<waiter>> held;
  for (int i = 0; i < 3; ++i)
    held.push_back(table.add("c" + std::to_string(i), 1, clock::now() + 10s));
  reply_waiters::refusal why = reply_waiters::refusal::none;
  EXPECT_FALSE(table.add("c3", 1, clock::now() + 10s, &why));
  EXPECT_EQ(why, reply_waiters::refusal::too_many);
  table.remove(held[0]);
  table.remove(held[0]);  // idempotent: frees its share once
  EXPECT_EQ(table.pending(), 2u);
  EXPECT_TRUE(table.add("c3", 1, clock::now() + 10s, &why));
  EXPECT_EQ(why, reply_waiters::refusal::none);
}

TEST_F(fixture, the_byte_bound_refuses_until_bytes_are_freed_but_one_large_body_passes_alone) {
  auto big = table.add("alone", 5000, clock::now() + 10s);
  ASSERT_TRUE(big) << "a body over the bound passes when nothing else is in flight";
  reply_waiters::refusal why = reply_waiters::refusal::none;
  EXPECT_FALSE(table.add("second", 1, clock::now() + 10s, &why));
  EXPECT_EQ(why, reply_waiters::refusal::too_many_bytes);
  table.remove(big);
  auto a = table.add("a", 600, clock::now() + 10s);
  ASSERT_TRUE(a);
  EXPECT_FALSE(table.add("b", 600, clock::now() + 10s, &why));
  EXPECT_EQ(why, reply_waiters::refusal::too_many_bytes);
  EXPECT_TRUE(table.add("c", 400, clock::now() + 10s));
  EXPECT_EQ(table.pending_bytes(), 1000u);
}

TEST_F(fixture, the_change_hook_sees_every_count) {
  std::vector<std::pair<std::size_t, std::uint64_t>> seen;
  table.on_change([&] { seen.emplace_back(table.pending(), table.late_replies()); });
  auto w = table.add("c1", 5, clock::now() + 10s);
  table.remove(w);
  table.deliver("c1", reply_with(200, ""));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], (std::pair<std::size_t, std::uint64_t>{1, 0}));
  EXPECT_EQ(seen[1], (std::pair<std::size_t, std::uint64_t>{0, 0}));
  EXPECT_EQ(seen[2], (std::pair<std::size_t, std::uint64_t>{0, 1}));
}

}  // namespace
}  // namespace sluice::proxy
