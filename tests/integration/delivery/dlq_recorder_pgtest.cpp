// attempt_recorder against a real PostgreSQL: group commit (one INSERT per batch), records
// beyond the queue bound dropped and counted, what is queued written at stop, records kept
// while PostgreSQL is away, and retention pruning in small batches.
#include "sluice/delivery/attempt_recorder.hpp"

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

attempt_record make_record(int n) {
  attempt_record r;
  r.message_id = test::id_of(n);
  r.queue = "orders";
  r.subscription = "billing";
  r.attempt = static_cast<std::uint32_t>(1 + n % 4);
  r.attempted_ms = 1'760'000'000'000 + n;
  r.outcome = n % 2 ? "retry" : "delivered";
  if (n % 5 != 0)
    r.status = n % 2 ? 503 : 200;
  r.latency_ms = 1.5 + n;
  if (n % 2)
    r.error = "status 503";
  return r;
}

double counter_value(metrics::registry& m, const std::string& name) {
  const std::string text = m.expose();
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

class dlq_recorder_test : public ::testing::Test {
 protected:
  test::dlq_database env_;
  metrics::registry metrics_;

  std::string scalar(const std::string& sql) { return env_.session().scalar(sql); }
};

TEST_F(dlq_recorder_test, writes_records_in_batches_and_everything_queued_at_stop) {
  attempt_recorder_options o;
  o.batch_max = 100;
  o.flush_interval = 50ms;
  attempt_recorder rec(*env_.pool, metrics_, o);
  auto work = [&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, rec.run(), asio::detached);
    for (int i = 0; i < 250; ++i)
      rec.record(make_record(i));
    co_await sleep_for(20ms);
    for (int i = 250; i < 260; ++i)
      rec.record(make_record(i));
    rec.stop();
    co_await sleep_for(0ms);
  };
  run(env_.io, work());
  // run() returns once io has no more work: the writer finished.
  EXPECT_EQ(rec.queued(), 0u);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_attempts"), "260");
  EXPECT_EQ(counter_value(metrics_, "sluice_delivery_attempt_records_written_total"), 260);
  // Row contents, including NULL status and error.
  EXPECT_EQ(scalar("SELECT attempt || ',' || outcome || ',' || coalesce(status::text, '-') || ','"
                   " || latency_ms || ',' || coalesce(error, '-') || ',' ||"
                   " (extract(epoch FROM attempted_at) * 1000)::int8"
                   " FROM sluice_delivery_attempts WHERE message_id = '" +
                   test::id_of(5).to_string() + "'"),
            "2,retry,-,6.5,status 503,1760000000005");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_attempts WHERE error IS NULL"), "130");
}

TEST_F(dlq_recorder_test, one_statement_per_batch) {
  attempt_recorder_options o;
  o.batch_max = 1000;
  o.flush_interval = 200ms;
  attempt_recorder rec(*env_.pool, metrics_, o);
  env_.session().query("SELECT pg_stat_reset()");
  auto work = [&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, rec.run(), asio::detached);
    co_await sleep_for(50ms);  // the first prune has run
    for (int i = 0; i < 500; ++i)
      rec.record(make_record(i));
    co_await sleep_for(500ms);
    rec.stop();
  };
  run(env_.io, work());
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_attempts"), "500");
  EXPECT_EQ(scalar("SELECT count(DISTINCT xmin::text) FROM sluice_delivery_attempts"), "1")
      << "500 records within one flush interval are one INSERT, one transaction";
}

TEST_F(dlq_recorder_test, beyond_the_queue_bound_records_are_dropped_and_counted) {
  attempt_recorder_options o;
  o.queue_max = 100;
  o.batch_max = 1000;
  attempt_recorder rec(*env_.pool, metrics_, o);
  for (int i = 0; i < 150; ++i)
    rec.record(make_record(i));
  EXPECT_EQ(rec.queued(), 100u);
  EXPECT_EQ(counter_value(metrics_, "sluice_delivery_attempt_records_dropped_total"), 50);
  rec.stop();
  run(env_.io, rec.run());
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_attempts"), "100");
}

TEST_F(dlq_recorder_test, keeps_records_while_the_table_is_unavailable_and_writes_them_later) {
  env_.session().query("ALTER TABLE sluice_delivery_attempts RENAME TO sluice_attempts_away");
  attempt_recorder_options o;
  o.flush_interval = 10ms;
  o.retry_delay = 100ms;
  attempt_recorder rec(*env_.pool, metrics_, o);
  auto work = [&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, rec.run(), asio::detached);
    for (int i = 0; i < 20; ++i)
      rec.record(make_record(i));
    co_await sleep_for(300ms);
    EXPECT_EQ(rec.queued(), 20u);
    env_.session().query("ALTER TABLE sluice_attempts_away RENAME TO sluice_delivery_attempts");
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (rec.queued() > 0 && std::chrono::steady_clock::now() < until)
      co_await sleep_for(20ms);
    rec.stop();
  };
  run(env_.io, work());
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_attempts"), "20");
}

TEST_F(dlq_recorder_test, prunes_rows_past_the_retention_in_small_batches) {
  env_.session().query(
      "INSERT INTO sluice_delivery_attempts (message_id, queue, subscription, attempt, "
      "attempted_at, outcome, latency_ms) SELECT gen_random_uuid(), 'q', 's', 1, now() - "
      "(CASE WHEN g <= 2500 THEN interval '73 hours' ELSE interval '71 hours' END), "
      "'delivered', 1 FROM generate_series(1, 3000) g");
  attempt_recorder_options o;
  o.retention = std::chrono::hours(72);
  o.prune_batch = 1000;
  o.prune_interval = 1h;
  attempt_recorder rec(*env_.pool, metrics_, o);
  auto work = [&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, rec.run(), asio::detached);
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (counter_value(metrics_, "sluice_delivery_attempt_records_pruned_total") < 2500 &&
           std::chrono::steady_clock::now() < until)
      co_await sleep_for(20ms);
    rec.stop();
  };
  run(env_.io, work());
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_attempts"), "500");
  EXPECT_EQ(counter_value(metrics_, "sluice_delivery_attempt_records_pruned_total"), 2500);
}

}  // namespace
}  // namespace sluice::delivery
