// Bulk re-drive jobs against a real PostgreSQL: what a job matches, dry runs, batches paced by
// the job's rate, two runners sharing a job without moving a row twice, and a runner stopped
// mid-job whose successor resumes exactly from the row's cursor.
#include "sluice/delivery/dlq_job_runner.hpp"

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
using test::make_dead_letter;
using test::run;
using steady = std::chrono::steady_clock;

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

class dlq_jobs_test : public ::testing::Test {
 protected:
  test::dlq_database env_;
  dead_letter_store letters_{*env_.pool};
  dlq_job_store jobs_{*env_.pool};
  metrics::registry metrics_;

  // n rows of queue q, subscriptions a and b alternating, dead_at 1 ms apart in order.
  void dead_letters(int n, const std::string& q = "orders", int first = 1) {
    for (int i = first; i < first + n; ++i) {
      const auto ec =
          run(env_.io, letters_.insert(make_dead_letter(i, q, i % 2 ? "a" : "b"), in(10s)));
      ASSERT_FALSE(ec) << ec.message();
    }
    auto s = env_.session();
    test::subscribe(s, q, "a");
    test::subscribe(s, q, "b");
    test::spread_dead_at(s, 1ms);
  }

  dlq_job create(const dead_letter_filter& f, bool dry_run, std::optional<std::int32_t> rate) {
    auto [status, job] = run(env_.io, jobs_.create(f, dry_run, rate, in(10s)));
    EXPECT_FALSE(status) << status.message;
    return job;
  }

  dlq_job get(const uuid& id) {
    auto [status, job] = run(env_.io, jobs_.get(id, in(10s)));
    EXPECT_FALSE(status) << status.message;
    EXPECT_TRUE(job);
    return job.value_or(dlq_job{});
  }

  // Waits (on the loop) until the job left 'running' or `limit` passed.
  asio::awaitable<bool> until_finished(const uuid& id, std::chrono::milliseconds limit) {
    const auto until = steady::now() + limit;
    while (steady::now() < until) {
      auto [status, job] = co_await jobs_.get(id, in(10s));
      if (!status && job && job->state != "running")
        co_return true;
      co_await sleep_for(10ms);
    }
    co_return false;
  }

  std::string scalar(const std::string& sql) { return env_.session().scalar(sql); }
};

TEST_F(dlq_jobs_test, a_dry_run_counts_and_moves_nothing) {
  dead_letters(20);
  dead_letter_filter f;
  f.subscription = "a";
  const auto job = create(f, true, std::nullopt);
  EXPECT_EQ(job.matched, 10);
  EXPECT_EQ(job.state, "done");
  EXPECT_TRUE(job.dry_run);
  EXPECT_TRUE(job.finished_ms);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "20");
  const auto again = get(job.id);
  EXPECT_EQ(again.matched, 10);
  EXPECT_EQ(again.redriven, 0);
  EXPECT_EQ(again.filter.subscription, "a");
  EXPECT_FALSE(again.filter.queue);
}

TEST_F(dlq_jobs_test, matches_only_rows_dead_before_the_job_and_within_the_filter) {
  dead_letters(10);
  env_.session().query(
      "UPDATE sluice_dead_letters SET dead_at = now() + interval '1 hour' "
      "WHERE created_ms % 5 = 0");
  dead_letter_filter f;
  f.start_ms = 1'767'225'600'000 + 2;  // rows 2..9 (dead_at = 2026-01-01 + n ms)
  f.end_ms = 1'767'225'600'000 + 10;
  const auto job = create(f, false, std::nullopt);
  EXPECT_EQ(job.matched, 7) << "rows 2,3,4,6,7,8,9: row 5 died after the job was created";
  EXPECT_EQ(job.state, "running");
  EXPECT_EQ(get(job.id).filter.start_ms, f.start_ms);
  EXPECT_EQ(get(job.id).filter.end_ms, f.end_ms);
  const auto none = create(
      dead_letter_filter{
          .queue = std::string("nothing"), .subscription = {}, .start_ms = {}, .end_ms = {}},
      false, std::nullopt);
  EXPECT_EQ(none.matched, 0);
  EXPECT_EQ(none.state, "done") << "nothing to do is done at once";
}

TEST_F(dlq_jobs_test, a_runner_moves_every_matched_row_and_finishes_the_job) {
  dead_letters(55);
  dead_letters(5, "other", 100);
  dead_letter_filter f;
  f.queue = "orders";
  const auto job = create(f, false, std::nullopt);
  ASSERT_EQ(job.matched, 55);
  dlq_job_runner runner(jobs_, letters_, metrics_, {.batch_max = 10});
  std::int64_t hooked = 0;
  runner.on_redriven([&](std::int64_t n) { hooked += n; });
  auto work = [&]() -> asio::awaitable<bool> {
    asio::co_spawn(co_await asio::this_coro::executor, runner.run(), asio::detached);
    runner.wake(job.id);
    const bool finished = co_await until_finished(job.id, 20s);
    runner.stop();
    co_return finished;
  };
  ASSERT_TRUE(run(env_.io, work()));
  const auto done = get(job.id);
  EXPECT_EQ(done.state, "done");
  EXPECT_EQ(done.redriven, 55);
  EXPECT_EQ(hooked, 55);
  EXPECT_EQ(runner.moved(), 55);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries WHERE origin = 'redrive' AND "
                   "attempt = 1 AND queue = 'orders'"),
            "55");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "5") << "queue other stays";
  EXPECT_NE(metrics_.expose().find("sluice_dlq_records{queue=\"other\"} 5"), std::string::npos)
      << metrics_.expose();
}

TEST_F(dlq_jobs_test, the_rate_is_honoured) {
  dead_letters(60);
  // 40/s: batches of 8, one every 200 ms; 60 rows are 8 batches, the first at once.
  const auto job = create({}, false, 40);
  dlq_job_runner runner(jobs_, letters_, metrics_, {});
  auto work = [&]() -> asio::awaitable<steady::duration> {
    asio::co_spawn(co_await asio::this_coro::executor, runner.run(), asio::detached);
    const auto start = steady::now();
    runner.wake(job.id);
    const bool finished = co_await until_finished(job.id, 20s);
    const auto took = steady::now() - start;
    runner.stop();
    EXPECT_TRUE(finished);
    co_return took;
  };
  const auto took = run(env_.io, work());
  EXPECT_EQ(get(job.id).redriven, 60);
  // (60 - 8) rows after the first batch at 40/s: 1.3 s; 7 intervals of 200 ms: 1.4 s.
  EXPECT_GE(took, 1300ms);
  EXPECT_LE(took, 2500ms);
}

TEST_F(dlq_jobs_test, two_runners_on_one_job_never_move_a_row_twice) {
  dead_letters(300);
  const auto job = create({}, false, std::nullopt);
  // Each runner with connections of its own, as two instances would have.
  store::pool_options o;
  o.connection.conninfo = env_.db.url();
  o.max_connections = 2;
  store::pg_pool pool_a(env_.io.get_executor(), o), pool_b(env_.io.get_executor(), o);
  dlq_job_store jobs_a(pool_a), jobs_b(pool_b);
  dead_letter_store letters_a(pool_a), letters_b(pool_b);
  dlq_job_runner a(jobs_a, letters_a, metrics_, {.batch_max = 5, .poll_interval = 10ms});
  dlq_job_runner b(jobs_b, letters_b, metrics_, {.batch_max = 5, .poll_interval = 10ms});
  auto work = [&]() -> asio::awaitable<bool> {
    const auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, a.run(), asio::detached);
    asio::co_spawn(ex, b.run(), asio::detached);
    a.wake(job.id);
    b.wake(job.id);
    const bool finished = co_await until_finished(job.id, 30s);
    a.stop();
    b.stop();
    co_return finished;
  };
  ASSERT_TRUE(run(env_.io, work()));
  EXPECT_EQ(get(job.id).redriven, 300);
  EXPECT_EQ(a.moved() + b.moved(), 300);
  // Which runner gets how much is up to the scheduler: on a loaded machine one of them can
  // claim every batch before the other's first poll (seen in a full parallel ctest run), so
  // only the sum is the promise.
  RecordProperty("moved_by_a", static_cast<int>(a.moved()));
  RecordProperty("moved_by_b", static_cast<int>(b.moved()));
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries"), "300");
  pool_a.shutdown();
  pool_b.shutdown();
}

TEST_F(dlq_jobs_test, a_fresh_runner_resumes_a_job_exactly_where_a_stopped_one_left_it) {
  dead_letters(100);
  // Broadcast-like ties: rows 40..43 share one (dead_at, id) with other subscriptions.
  for (int n = 40; n <= 43; ++n) {
    const auto ec = run(env_.io, letters_.insert(make_dead_letter(n, "orders", "z"), in(10s)));
    ASSERT_FALSE(ec);
  }
  auto s = env_.session();
  test::subscribe(s, "orders", "z");
  test::spread_dead_at(s, 1ms);
  const auto job = create({}, false, 50);  // batches of 10, 5 per second
  ASSERT_EQ(job.matched, 104);
  std::int64_t first_moved = 0;
  {
    dlq_job_runner first(jobs_, letters_, metrics_, {});
    auto work = [&]() -> asio::awaitable<void> {
      asio::co_spawn(co_await asio::this_coro::executor, first.run(), asio::detached);
      first.wake(job.id);
      const auto until = steady::now() + 10s;
      while (first.moved() < 30 && steady::now() < until)
        co_await sleep_for(5ms);
      first.stop();
    };
    run(env_.io, work());  // returns once the stopped runner's loop has ended
    first_moved = first.moved();
  }
  const auto halfway = get(job.id);
  EXPECT_EQ(halfway.state, "running");
  EXPECT_EQ(halfway.redriven, first_moved);
  EXPECT_GE(first_moved, 30);
  EXPECT_LT(first_moved, 104);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), std::to_string(104 - first_moved));

  dlq_job_runner second(jobs_, letters_, metrics_, {.poll_interval = 10ms});
  auto work = [&]() -> asio::awaitable<bool> {
    asio::co_spawn(co_await asio::this_coro::executor, second.run(), asio::detached);
    const bool finished = co_await until_finished(job.id, 20s);  // found by its poll
    second.stop();
    co_return finished;
  };
  ASSERT_TRUE(run(env_.io, work()));
  const auto done = get(job.id);
  EXPECT_EQ(done.matched, 104);
  EXPECT_EQ(done.redriven, 104);
  EXPECT_EQ(first_moved + second.moved(), 104);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_retries"), "104");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "0");
}

TEST(dlq_batch_size_test, a_fifth_of_the_rate_within_bounds) {
  EXPECT_EQ(dlq_batch_size(std::nullopt, 500), 500u);
  EXPECT_EQ(dlq_batch_size(40, 500), 8u);
  EXPECT_EQ(dlq_batch_size(3, 500), 1u);
  EXPECT_EQ(dlq_batch_size(100'000, 500), 500u);
  EXPECT_EQ(dlq_batch_size(0, 0), 1u);
}

}  // namespace
}  // namespace sluice::delivery
