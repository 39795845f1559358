#include "sluice/push/push_service.hpp"

#include <memory>
#include <optional>
#include <stdexcept>

#include "sluice/buffer/errc.hpp"

#include <boost/asio/co_spawn.hpp>
#include <gtest/gtest.h>

#include "push_fakes.hpp"

namespace sluice::push {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::fake_log;
using test::fake_store;
using test::make_message;
using test::run_until;
using test::settle;

using result_slot = std::shared_ptr<std::optional<push_outcome>>;

class push_service_test : public ::testing::Test {
 protected:
  push_service_test() : pool_(io_.get_executor(), store::pool_options{}) {}

  // `failover`: another log to stand for the failover log (default failover_).
  void start(push_service_options o = {}, record_log* failover = nullptr) {
    o.prepare_schema = []() -> asio::awaitable<std::error_code> { co_return std::error_code{}; };
    o.db_alive = [this]() -> asio::awaitable<bool> {
      ++probes_;
      co_return db_up_;
    };
    o.deadline = 3s;
    o.replay_batch = 100;
    svc_ = std::make_unique<push_service>(io_.get_executor(), pool_, db_,
                                          failover ? *failover : failover_, qos0_, metrics_, o);
    bool started = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await svc_->start();
          started = true;
        },
        rethrow);
    ASSERT_TRUE(run_until(io_, [&] { return started; }));
  }

  void TearDown() override {
    if (!svc_)
      return;
    db_.release();
    failover_.release();
    qos0_.release();
    bool stopped = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await svc_->stop();
          stopped = true;
        },
        rethrow);
    EXPECT_TRUE(run_until(io_, [&] { return stopped; }));
  }

  static void rethrow(std::exception_ptr e) {
    if (e)
      std::rethrow_exception(e);
  }

  result_slot push(std::vector<message> items, std::optional<qos0_options> qos0 = {}) {
    auto slot = std::make_shared<std::optional<push_outcome>>();
    push_request r{std::move(items), qos0};
    asio::co_spawn(
        io_,
        [this, slot, r = std::move(r)]() mutable -> asio::awaitable<void> {
          *slot = co_await svc_->push(std::move(r));
        },
        rethrow);
    return slot;
  }

  push_outcome push_and_wait(std::vector<message> items, std::optional<qos0_options> qos0 = {}) {
    auto slot = push(std::move(items), qos0);
    EXPECT_TRUE(run_until(io_, [&] { return slot->has_value(); }));
    return slot->value_or(push_outcome{});
  }

  bool wait_mode(push_mode m) {
    return run_until(io_, [&] { return svc_->status().mode == m; });
  }

  // A durable push while PostgreSQL is down goes to the failover log.
  void take_postgres_down() {
    db_up_ = false;
    db_.script = [](const std::vector<message>&) { return fake_store::unavailable("down"); };
  }
  void bring_postgres_back() {
    db_up_ = true;
    db_.script = nullptr;
  }

  asio::io_context io_;
  metrics::registry metrics_;
  fake_store db_;
  fake_log failover_;
  fake_log qos0_;
  store::pg_pool pool_;
  bool db_up_ = true;
  int probes_ = 0;
  std::unique_ptr<push_service> svc_;
};

TEST_F(push_service_test, goes_direct_once_the_schema_is_ready_and_the_log_is_empty) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  const auto out = push_and_wait({make_message("q", "t1")});
  ASSERT_EQ(out.error_status, 0);
  ASSERT_EQ(out.items.size(), 1u);
  EXPECT_EQ(out.items[0].status, item_status::stored);
  EXPECT_TRUE(db_.has(out.items[0].id));
  EXPECT_TRUE(failover_.records.empty());
}

// Hole 1: a retry that arrives while the original's append is still being written must not be
// answered `duplicate` before the original is durable: it waits for the original's outcome
// and shares it.
TEST_F(push_service_test, retry_during_an_append_waits_for_its_outcome) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  failover_.hold_appends = true;
  auto original = push({make_message("q", "tx")});
  ASSERT_TRUE(run_until(io_, [&] { return failover_.appends_started == 1; }));
  auto retry = push({make_message("q", "tx")});
  settle(io_);
  EXPECT_FALSE(retry->has_value()) << "answered while the original was not durable";
  EXPECT_EQ(failover_.appends_started, 1) << "the retry must wait, not append beside it";

  failover_.release();
  ASSERT_TRUE(run_until(io_, [&] { return original->has_value() && retry->has_value(); }));
  ASSERT_EQ((*original)->error_status, 0);
  ASSERT_EQ((*retry)->error_status, 0);
  EXPECT_EQ((*retry)->items[0].status, item_status::duplicate);
  EXPECT_EQ((*retry)->items[0].id, (*original)->items[0].id);
  EXPECT_TRUE(failover_.holds((*retry)->items[0].id));
}

// A retry of a push whose PostgreSQL round trip is still running waits for its commit and is
// answered with its id from the index, without a round trip of its own: had PostgreSQL gone
// away meanwhile, the retry would otherwise be buffered under a new id that replay drops.
TEST_F(push_service_test, retry_during_a_round_trip_is_answered_with_the_committed_id) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  db_.hold = true;
  auto original = push({make_message("q", "rt")});
  ASSERT_TRUE(run_until(io_, [&] { return db_.calls == 1; }));
  auto retry = push({make_message("q", "rt")});
  settle(io_);
  EXPECT_FALSE(retry->has_value());
  take_postgres_down();  // a round trip the retry made now would fail over; the held one commits
  db_.release();
  ASSERT_TRUE(run_until(io_, [&] { return original->has_value() && retry->has_value(); }));
  ASSERT_EQ((*original)->error_status, 0);
  ASSERT_EQ((*retry)->error_status, 0);
  EXPECT_EQ((*original)->items[0].status, item_status::stored);
  EXPECT_EQ((*retry)->items[0].status, item_status::duplicate);
  EXPECT_EQ((*retry)->items[0].id, (*original)->items[0].id);
  EXPECT_EQ(db_.calls, 1) << "the retry made a round trip of its own";
  EXPECT_TRUE(failover_.records.empty());
}

// Hole 1, the other outcome: the original's append fails (503) and the retry is written itself,
// so its 2xx names a record that exists.
TEST_F(push_service_test, retry_after_the_originals_append_failed_stores_its_own_record) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  failover_.hold_appends = true;
  failover_.fail_appends = std::make_error_code(std::errc::io_error);
  auto original = push({make_message("q", "tx")});
  ASSERT_TRUE(run_until(io_, [&] { return failover_.appends_started == 1; }));
  auto retry = push({make_message("q", "tx")});
  settle(io_);
  ASSERT_FALSE(retry->has_value());

  // The original's append fails; the retry's own append (the second) succeeds.
  failover_.hold_appends = false;
  failover_.released.notify_all();
  ASSERT_TRUE(run_until(io_, [&] { return original->has_value(); }));
  EXPECT_EQ((*original)->error_status, 503);
  EXPECT_EQ((*original)->error_code, "buffer_unavailable");
  failover_.fail_appends = {};
  ASSERT_TRUE(run_until(io_, [&] { return retry->has_value(); }));
  ASSERT_EQ((*retry)->error_status, 0) << (*retry)->error_message;
  EXPECT_EQ((*retry)->items[0].status, item_status::buffered);
  EXPECT_TRUE(failover_.holds((*retry)->items[0].id))
      << "the retry's 2xx names a message that was never written";
}

// Hole 1, across QoS: a durable push repeating a QoS0 record (written, not fsynced, not in
// PostgreSQL) is not answered `duplicate` of a record that may not survive a power loss: it is
// written durably under that record's id, so whichever copy arrives first is the one row.
TEST_F(push_service_test, durable_repeat_of_a_qos0_record_is_stored_under_its_id) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  const auto q = push_and_wait({make_message("q", "tx")}, qos0_options{60'000, 10'000});
  ASSERT_EQ(q.error_status, 0);
  ASSERT_EQ(q.items[0].status, item_status::buffered);
  ASSERT_FALSE(db_.has(q.items[0].id)) << "bufferMs of a minute: not flushed yet";

  const auto durable = push_and_wait({make_message("q", "tx")});
  ASSERT_EQ(durable.error_status, 0) << durable.error_message;
  EXPECT_EQ(durable.items[0].status, item_status::duplicate);
  EXPECT_EQ(durable.items[0].id, q.items[0].id);
  EXPECT_TRUE(db_.has(q.items[0].id)) << "answered before the record was durable";
}

// Hole 4: the repeat of an item inside one request answers with the id its first occurrence
// ends up with, here the id PostgreSQL already had.
TEST_F(push_service_test, repeated_item_answers_the_stored_id) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  const auto first = push_and_wait({make_message("q", "tx")});
  ASSERT_EQ(first.error_status, 0);
  const uuid stored = first.items[0].id;

  const auto again = push_and_wait({make_message("q", "tx"), make_message("q", "tx")});
  ASSERT_EQ(again.error_status, 0);
  ASSERT_EQ(again.items.size(), 2u);
  for (const auto& item : again.items) {
    EXPECT_EQ(item.status, item_status::duplicate);
    EXPECT_EQ(item.id, stored);
  }
}

TEST_F(push_service_test, repeated_new_item_answers_the_first_occurrences_id) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  const auto out = push_and_wait({make_message("q", "a"), make_message("q", "a")});
  ASSERT_EQ(out.error_status, 0);
  EXPECT_EQ(out.items[0].status, item_status::stored);
  EXPECT_EQ(out.items[1].status, item_status::duplicate);
  EXPECT_EQ(out.items[1].id, out.items[0].id);
  EXPECT_TRUE(db_.has(out.items[1].id));
}

// Hole 6: an exception inside a batch answers its requests, and the batcher goes on.
TEST_F(push_service_test, exception_in_a_batch_answers_every_request) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  int throws_left = 6;  // more than the batcher's parallel round trips
  db_.script = [&](const std::vector<message>&) -> std::optional<store::insert_result> {
    if (throws_left-- > 0)
      throw std::runtime_error("injected");
    return std::nullopt;
  };
  std::vector<result_slot> calls;
  for (int i = 0; i < 6; ++i)
    calls.push_back(push({make_message("q", "e" + std::to_string(i))}));
  ASSERT_TRUE(run_until(io_, [&] {
    for (auto& c : calls) {
      if (!c->has_value())
        return false;
    }
    return true;
  })) << "a request never got an answer";
  // Whether the round trip committed is unknown, as after a lost connection: the requests
  // fail over, and the replay (which throws no more) stores each exactly once.
  for (auto& c : calls) {
    ASSERT_EQ((*c)->error_status, 0) << (*c)->error_code;
    EXPECT_EQ((*c)->items[0].status, item_status::buffered);
  }
  ASSERT_TRUE(wait_mode(push_mode::direct));
  for (auto& c : calls)
    EXPECT_TRUE(db_.has((*c)->items[0].id));
  const auto after = push_and_wait({make_message("q", "after")});
  EXPECT_EQ(after.error_status, 0);
  EXPECT_TRUE(db_.has(after.items[0].id));
}

// Hole 5: a round trip that times out while PostgreSQL answers probes is a slow statement,
// not an outage: 503 for that request, no failover.
TEST_F(push_service_test, timeout_while_postgres_answers_does_not_fail_over) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  db_.script = [](const std::vector<message>& b) -> std::optional<store::insert_result> {
    if (b.size() == 1 && b[0].transaction_id == "locked")
      return fake_store::timed_out();
    return std::nullopt;
  };
  const auto out = push_and_wait({make_message("q", "locked")});
  EXPECT_EQ(out.error_status, 503);
  EXPECT_EQ(out.error_code, "db_timeout");
  EXPECT_EQ(svc_->status().mode, push_mode::direct);
  EXPECT_TRUE(failover_.records.empty());
  const auto next = push_and_wait({make_message("q", "free")});
  EXPECT_EQ(next.error_status, 0);
  EXPECT_EQ(next.items[0].status, item_status::stored);
}

TEST_F(push_service_test, failure_with_postgres_gone_fails_over_and_drains_back_to_direct) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  const auto out = push_and_wait({make_message("q", "f1")});
  ASSERT_EQ(out.error_status, 0);
  EXPECT_EQ(out.items[0].status, item_status::buffered);
  EXPECT_NE(svc_->status().mode, push_mode::direct);
  bring_postgres_back();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  EXPECT_TRUE(db_.has(out.items[0].id));
  EXPECT_EQ(failover_.stats().pending_records, 0u);
}

// Hole 5, replay side: one record whose insert keeps timing out while PostgreSQL answers is set
// aside (visibly); the rest of the log replays.
TEST_F(push_service_test, poisoned_record_is_set_aside_and_the_log_drains) {
  push_service_options o;
  o.poisoned_span = 300ms;
  start(o);
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  std::vector<message> items;
  for (int i = 0; i < 10; ++i)
    items.push_back(make_message("q", "r" + std::to_string(i)));
  const auto out = push_and_wait(std::move(items));
  ASSERT_EQ(out.error_status, 0);
  db_up_ = true;
  db_.script = [](const std::vector<message>& b) -> std::optional<store::insert_result> {
    for (const auto& m : b) {
      if (m.transaction_id == "r4")
        return fake_store::timed_out();
    }
    return std::nullopt;
  };
  ASSERT_TRUE(wait_mode(push_mode::direct));
  ASSERT_EQ(failover_.failed.size(), 1u);
  EXPECT_EQ(failover_.failed[0].first.transaction_id, "r4");
  EXPECT_EQ(svc_->status().failover.set_aside_total, 1u);
  for (std::size_t i = 0; i < 10; ++i) {
    if (i != 4) {
      EXPECT_TRUE(db_.has(out.items[i].id)) << i;
    }
  }
}

// Hole 2: one QoS0 push larger than bufferMax reaches PostgreSQL whole, within bufferMs.
TEST_F(push_service_test, qos0_push_beyond_buffer_max_is_flushed_whole) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  std::vector<message> items;
  for (int i = 0; i < 250; ++i)
    items.push_back(make_message("q", std::nullopt));
  const auto out = push_and_wait(std::move(items), qos0_options{50, 100});
  ASSERT_EQ(out.error_status, 0);
  ASSERT_TRUE(run_until(
      io_, [&] { return db_.rows.size() == 250 && qos0_.stats().pending_records == 0; }, 5s))
      << db_.rows.size() << " of 250 stored, " << qos0_.stats().pending_records << " pending";
}

// The hand-back: the log is found empty while an append is still being written; new pushes
// wait for that record to be replayed instead of overtaking it.
TEST_F(push_service_test, hands_back_only_after_appends_in_flight_are_replayed) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  failover_.hold_appends = true;
  auto held = push({make_message("q", "h1")});
  ASSERT_TRUE(run_until(io_, [&] { return failover_.appends_started == 1; }));
  bring_postgres_back();
  ASSERT_TRUE(wait_mode(push_mode::handing_back));
  auto next = push({make_message("q", "h2")});
  settle(io_);
  EXPECT_FALSE(next->has_value());
  failover_.release();
  ASSERT_TRUE(run_until(io_, [&] { return held->has_value() && next->has_value(); }));
  EXPECT_EQ((*held)->items[0].status, item_status::buffered);
  EXPECT_EQ((*next)->items[0].status, item_status::stored);
  EXPECT_TRUE(db_.has((*held)->items[0].id));
}

// Hole 3, push side: when the log sets aside records it found corrupt, their transactionIds
// are no longer answered `duplicate`.
TEST_F(push_service_test, records_the_log_skipped_leave_the_duplicate_index) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  const auto first = push_and_wait({make_message("q", "gone"), make_message("q", "kept")});
  ASSERT_EQ(first.error_status, 0);
  failover_.skipped.insert(0);
  ++failover_.unreadable_ranges;
  bring_postgres_back();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  const auto again = push_and_wait({make_message("q", "gone")});
  ASSERT_EQ(again.error_status, 0);
  EXPECT_EQ(again.items[0].status, item_status::stored)
      << "answered duplicate of a record that will never be stored";
  EXPECT_TRUE(db_.has(again.items[0].id));
  EXPECT_TRUE(db_.has(first.items[1].id));
}

// From the review of 1305020 (each failed there).

// A QoS0 flush that fails (PostgreSQL down) must not reset the hints to "never": once QoS0
// traffic stops, the records still reach PostgreSQL when it is back.
TEST_F(push_service_test, qos0_records_of_a_failed_flush_reach_postgres_once_it_is_back) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  std::vector<message> items;
  for (int i = 0; i < 10; ++i)
    items.push_back(make_message("q", std::nullopt));
  const auto out = push_and_wait(std::move(items), qos0_options{50, 100});
  ASSERT_EQ(out.error_status, 0);
  ASSERT_TRUE(run_until(io_, [&] { return db_.calls >= 1; }));  // the flush after bufferMs fails
  bring_postgres_back();
  EXPECT_TRUE(run_until(
      io_, [&] { return db_.rows.size() == 10; }, 5s))
      << db_.rows.size() << " of 10 stored, " << qos0_.stats().pending_records << " pending";
}

// PostgreSQL answers probes but is slow for a few statements (overload, a checkpoint): no
// record that is fine is set aside.
TEST_F(push_service_test, a_short_slowdown_sets_no_healthy_record_aside) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  std::vector<message> items;
  for (int i = 0; i < 10; ++i)
    items.push_back(make_message("q", "s" + std::to_string(i)));
  const auto out = push_and_wait(std::move(items));
  ASSERT_EQ(out.error_status, 0);
  auto slow = std::make_shared<int>(3);  // the next three statements run out of time
  db_up_ = true;
  db_.script = [slow](const std::vector<message>&) -> std::optional<store::insert_result> {
    if (*slow > 0) {
      --*slow;
      return fake_store::timed_out();
    }
    return std::nullopt;
  };
  ASSERT_TRUE(wait_mode(push_mode::direct));
  EXPECT_TRUE(failover_.failed.empty())
      << failover_.failed.size() << " healthy record(s) set aside to failed/";
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_TRUE(db_.has(out.items[i].id)) << i;
  }
}

// One locked item in a group-commit round trip must not refuse the requests batched with it.
TEST_F(push_service_test, a_locked_item_does_not_fail_the_requests_batched_with_it) {
  push_service_options o;
  o.batcher.stall_after = std::chrono::hours(1);  // group deterministically
  start(o);
  ASSERT_TRUE(wait_mode(push_mode::direct));
  db_.script = [](const std::vector<message>& b) -> std::optional<store::insert_result> {
    for (const auto& m : b) {
      if (m.transaction_id == "locked")
        return fake_store::timed_out();
    }
    return std::nullopt;
  };
  db_.hold = true;
  auto warm = push({make_message("q", "warm")});
  ASSERT_TRUE(run_until(io_, [&] { return db_.calls == 1; }));
  auto locked = push({make_message("q", "locked")});
  auto innocent = push({make_message("q", "innocent")});
  settle(io_);  // both queue behind the running round trip
  db_.release();
  ASSERT_TRUE(run_until(
      io_, [&] { return warm->has_value() && locked->has_value() && innocent->has_value(); }));
  EXPECT_EQ((*locked)->error_code, "db_timeout");
  ASSERT_EQ((*innocent)->error_status, 0) << (*innocent)->error_code;
  EXPECT_TRUE(db_.has((*innocent)->items[0].id));
}

// Two requests waiting for the same in-flight original, each with a new item, must not wake
// each other in a loop (and be refused at the deadline although nothing changed).
TEST_F(push_service_test, waiting_retries_do_not_wake_each_other_in_a_loop) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  db_.hold = true;
  auto original = push({make_message("q", "a")});
  ASSERT_TRUE(run_until(io_, [&] { return db_.calls == 1; }));
  auto retry1 = push({make_message("q", "a"), make_message("q", "b")});
  auto retry2 = push({make_message("q", "a"), make_message("q", "c")});
  std::size_t handlers = 0;
  io_.restart();
  while (const auto n = io_.poll()) {
    handlers += n;
    if (handlers > 10'000)
      break;
  }
  EXPECT_LT(handlers, 100u) << "waiting requests keep waking each other";
  EXPECT_FALSE(retry1->has_value());
  EXPECT_FALSE(retry2->has_value());
  db_.release();
  ASSERT_TRUE(run_until(
      io_, [&] { return original->has_value() && retry1->has_value() && retry2->has_value(); }));
  ASSERT_EQ((*retry1)->error_status, 0) << (*retry1)->error_code;
  EXPECT_EQ((*retry1)->items[0].id, (*original)->items[0].id);
}

// A failover log whose reads can be held open, as buffer_log's are (they run on its blocking
// thread; the loop runs other work meanwhile).
class gated_log final : public record_log {
 public:
  explicit gated_log(fake_log& inner) : inner_(inner) {}
  asio::awaitable<std::error_code> append(std::vector<message> m) override {
    co_return co_await inner_.append(std::move(m));
  }
  asio::awaitable<read_result> read_batch(std::size_t n) override {
    ++reads_started;
    while (hold_reads)
      co_await released.wait_until(async_event::clock::time_point::max());
    co_return co_await inner_.read_batch(n);
  }
  std::error_code acknowledge(const buffer::record_position& p) override {
    return inner_.acknowledge(p);
  }
  std::error_code rewind() override { return inner_.rewind(); }
  asio::awaitable<std::error_code> quarantine_failed(std::vector<message> r,
                                                     std::string why) override {
    co_return co_await inner_.quarantine_failed(std::move(r), std::move(why));
  }
  asio::awaitable<std::pair<std::error_code, buffer::retry_result>> retry_failed(
      buffer::retry_filter filter) override {
    co_return co_await inner_.retry_failed(filter);
  }
  buffer::buffer_stats stats() const override { return inner_.stats(); }
  std::string name() const override { return "gated"; }
  void release() {
    hold_reads = false;
    released.notify_all();
  }
  bool hold_reads = false;
  int reads_started = 0;
  async_event released;

 private:
  fake_log& inner_;
};

class push_service_gated_test : public push_service_test {
 protected:
  void start_gated() { start({}, &gated_); }
  void TearDown() override {
    gated_.release();
    push_service_test::TearDown();
    svc_.reset();
  }
  gated_log gated_{failover_};
};

// The duplicate index is re-checked after the log set records aside, while the log is read
// (suspending): a retry in that window must get the buffered id, not a second one.
TEST_F(push_service_gated_test, a_retry_during_reindexing_gets_the_buffered_id) {
  start_gated();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  const auto first = push_and_wait({make_message("q", "gone"), make_message("q", "kept")});
  ASSERT_EQ(first.error_status, 0);
  ASSERT_EQ(first.items[1].status, item_status::buffered);
  failover_.skipped.insert(0);
  ++failover_.unreadable_ranges;
  gated_.reads_started = 0;
  gated_.hold_reads = true;
  ASSERT_TRUE(run_until(io_, [&] { return gated_.reads_started > 0; }));  // reindex() reads
  auto retry = push({make_message("q", "kept")});
  settle(io_);
  gated_.release();
  ASSERT_TRUE(run_until(io_, [&] { return retry->has_value(); }));
  ASSERT_EQ((*retry)->error_status, 0);
  bring_postgres_back();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  EXPECT_EQ((*retry)->items[0].id, first.items[1].id) << "one transactionId, two acknowledged ids";
  EXPECT_TRUE(db_.has((*retry)->items[0].id)) << "the retry's answer names a message never stored";
}

// A durable retry of a QoS0 record while PostgreSQL is down is taken by the failover log, under
// the QoS0 record's id, instead of being refused for the whole outage.
TEST_F(push_service_test, durable_retry_of_a_qos0_record_is_accepted_during_an_outage) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  const auto q = push_and_wait({make_message("q", "tx")}, qos0_options{50, 100});
  ASSERT_EQ(q.error_status, 0);
  const auto durable = push_and_wait({make_message("q", "tx")});
  ASSERT_EQ(durable.error_status, 0) << durable.error_code;
  EXPECT_EQ(durable.items[0].id, q.items[0].id);
  EXPECT_TRUE(failover_.holds(q.items[0].id)) << "the durable copy is in the failover log";
  bring_postgres_back();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  ASSERT_TRUE(run_until(io_, [&] { return qos0_.stats().pending_records == 0; }));
  EXPECT_TRUE(db_.has(q.items[0].id));
  EXPECT_EQ(db_.rows.size(), 1u);
}

// A read error while re-checking the index after skipped records must not forget the entries.
TEST_F(push_service_test, a_read_error_while_reindexing_keeps_the_duplicate_index) {
  start();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  take_postgres_down();
  const auto first = push_and_wait({make_message("q", "gone"), make_message("q", "kept")});
  ASSERT_EQ(first.error_status, 0);
  failover_.skipped.insert(0);
  ++failover_.unreadable_ranges;
  failover_.fail_reads = std::make_error_code(std::errc::too_many_files_open);  // transient
  const int reads_before = failover_.reads_failed;
  ASSERT_TRUE(run_until(io_, [&] { return failover_.reads_failed > reads_before; }));
  failover_.fail_reads = {};
  const auto retry = push_and_wait({make_message("q", "kept")});
  ASSERT_EQ(retry.error_status, 0);
  bring_postgres_back();
  ASSERT_TRUE(wait_mode(push_mode::direct));
  EXPECT_EQ(retry.items[0].id, first.items[1].id) << "one transactionId, two acknowledged ids";
  EXPECT_TRUE(db_.has(retry.items[0].id)) << "the retry's answer names a message never stored";
}

}  // namespace
}  // namespace sluice::push
