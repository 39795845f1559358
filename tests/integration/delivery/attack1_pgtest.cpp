// attack1: findings of the attack review of issue #10's delivery stores, against a real
// PostgreSQL. Each test failed before its fix (see the commit that added it).
#include "sluice/delivery/attempt_recorder.hpp"
#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/delivery/dlq_job_store.hpp"
#include "sluice/delivery/retry_store.hpp"
#include "sluice/delivery/subscription_store.hpp"
#include "sluice/store/listen_follower.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "dlq_test_support.hpp"

namespace sluice::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::in;
using test::run;

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

class attack1_test : public ::testing::Test {
 protected:
  test::dlq_database env_;
  metrics::registry metrics_;
  dead_letter_store letters_{*env_.pool};

  std::string scalar(const std::string& sql) { return env_.session().scalar(sql); }
};

// A target whose response body holds a NUL byte (a binary error page): the dead letter must
// still be written, or the message can be neither dead-lettered nor acked.
TEST_F(attack1_test, a_response_excerpt_with_a_nul_byte_is_still_dead_lettered) {
  auto d = test::make_dead_letter(1, "orders", "billing");
  d.response_excerpt = std::string("bad\0gateway", 11);
  const auto ec = run(env_.io, letters_.insert(d, in(10s)));
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "1");
}

// One error text with a NUL must not cost the other records of its batch.
TEST_F(attack1_test, an_error_text_with_a_nul_byte_does_not_drop_its_batch) {
  attempt_recorder_options o;
  o.flush_interval = 20ms;
  attempt_recorder rec(*env_.pool, metrics_, o);
  auto work = [&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, rec.run(), asio::detached);
    for (int i = 0; i < 10; ++i) {
      attempt_record r;
      r.message_id = test::id_of(i);
      r.queue = "orders";
      r.subscription = "billing";
      r.attempted_ms = 1'760'000'000'000 + i;
      r.outcome = "retry";
      r.error = i == 3 ? std::string("read\0failed", 11) : "status 503";
      rec.record(std::move(r));
    }
    co_await sleep_for(100ms);
    rec.stop();
  };
  run(env_.io, work());
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_attempts"), "10");
}

// A subscription's dead letters outlive it (the DLQ keeps them), but its retry rows do not: the
// scheduler never claims a row of a missing subscription and housekeeping deletes it after the
// grace. A re-drive into a deleted subscription therefore deleted the dead letter and wrote a
// retry row nobody would ever publish: the message was gone, with a 202.
TEST_F(attack1_test, a_redrive_into_a_deleted_subscription_keeps_the_dead_letter) {
  run(env_.io, letters_.insert(test::make_dead_letter(1, "orders", "deleted"), in(10s)));
  const auto [status, moved] =
      run(env_.io, letters_.redrive_one(test::id_of(1), "orders", "deleted", in(10s)));
  ASSERT_FALSE(status) << status.message;
  EXPECT_FALSE(moved);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "1");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries"), "0");
}

TEST_F(attack1_test, a_bulk_redrive_leaves_the_dead_letters_of_deleted_subscriptions) {
  env_.session().query(
      "INSERT INTO sluice_subscriptions (queue, name, spec) VALUES ('orders', 'live', '{}')");
  for (int i = 0; i < 10; ++i)
    run(env_.io,
        letters_.insert(test::make_dead_letter(i, "orders", i % 2 ? "live" : "deleted"), in(10s)));
  dlq_job_store jobs(*env_.pool);
  const auto [status, job] = run(env_.io, jobs.create({}, false, std::nullopt, in(10s)));
  ASSERT_FALSE(status) << status.message;
  EXPECT_EQ(job.matched, 5);
  for (int i = 0; i < 10; ++i) {
    const auto r = run(env_.io, jobs.run_batch(job.id, 3, in(10s)));
    ASSERT_NE(r.result, dlq_batch_result::outcome::failed) << r.status.message;
    if (r.result == dlq_batch_result::outcome::finished)
      break;
  }
  EXPECT_EQ(scalar("SELECT state || '/' || redriven FROM sluice_dlq_jobs"), "done/5");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries WHERE subscription = 'live'"),
            "5");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters WHERE subscription = 'deleted'"), "5");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries WHERE subscription = 'deleted'"),
            "0");
}

// A 410's pause reason carries the target's status line, whose reason phrase may hold any byte
// (obs-text): PostgreSQL refusing it meant the subscription was never paused and went on
// delivering to a target that said it is gone.
TEST_F(attack1_test, a_pause_reason_with_bytes_postgresql_refuses_still_pauses) {
  auto session = env_.session();
  test::subscribe(session, "orders", "gone");
  session.query("UPDATE sluice_subscriptions SET paused_at = NULL");
  subscription_store subs(*env_.pool);
  const auto r = run(env_.io, subs.set_paused("orders", "gone", true,
                                              std::string("gone: 410 Gon\xff\0e", 16), in(10s)));
  EXPECT_FALSE(r.status) << r.status.message;
  EXPECT_TRUE(r.found);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_subscriptions WHERE paused_at IS NOT NULL"), "1");
}

// A read callback that throws (a registry listener of the delivery engine, an allocation)
// ended the follower's loop with running_ still set: the table was no longer followed, and
// wait_stopped() at shutdown waited forever. The loop must treat it as a failed read.
TEST_F(attack1_test, a_throwing_reload_neither_ends_the_follower_nor_hangs_its_stop) {
  int calls = 0;
  store::listen_target t;
  t.channel = "attack1_channel";
  t.log_name = "attack1";
  t.metric_prefix = "attack1_follower";
  t.what = "attack1";
  t.full_reload = [&calls](store::pg_connection&, store::clock::time_point,
                           bool) -> asio::awaitable<bool> {
    if (++calls == 1)
      throw std::runtime_error("listener failed");
    co_return true;
  };
  t.reload_one = [](store::pg_connection&, const std::string&,
                    store::clock::time_point) -> asio::awaitable<bool> { co_return true; };
  store::listen_options o;
  o.connection.conninfo = env_.db.url();
  o.backoff_min = 10ms;
  o.backoff_max = 20ms;
  store::listen_follower follower(env_.io.get_executor(), std::move(t), o, metrics_);
  bool stopped = false;
  auto work = [&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, follower.run(), asio::detached);
    for (int i = 0; i < 300 && follower.mode() != store::follower_mode::following; ++i)
      co_await sleep_for(10ms);
    EXPECT_EQ(follower.mode(), store::follower_mode::following) << "reload calls: " << calls;
    follower.stop();
    co_await follower.wait_stopped();
    stopped = true;
  };
  asio::co_spawn(env_.io, work(), asio::detached);
  env_.io.restart();
  env_.io.run_for(10s);
  EXPECT_TRUE(stopped) << "wait_stopped() did not return";
  EXPECT_GE(calls, 2);
}

// A message the relay did not publish (anyone may publish to sluice.<queue>) can carry a NUL
// or a non-UTF-8 byte in a header or its partition. PostgreSQL refused to park or dead-letter
// it, so it could be neither retried nor dead-lettered: a poison message for its subscription.
TEST_F(attack1_test, a_message_with_a_nul_or_bad_byte_in_its_headers_is_parked_and_dead_lettered) {
  auto d = test::make_dead_letter(1, "orders", "billing");
  d.message.partition = std::string("p\xff\0", 3);
  d.message.headers.emplace_back("namespace", std::string("a\0b", 3));
  d.message.headers.emplace_back(std::string("x\0y", 3), "v");
  retry_store retries(*env_.pool);
  const auto parked =
      run(env_.io, retries.park(d.message, std::chrono::system_clock::now(), in(10s)));
  EXPECT_FALSE(parked) << parked.message() << ": " << retries.last_error();
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries"), "1");
  const auto dead = run(env_.io, letters_.insert(d, in(10s)));
  EXPECT_FALSE(dead) << dead.message();
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "1");
}

}  // namespace
}  // namespace sluice::delivery
