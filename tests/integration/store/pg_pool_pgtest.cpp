#include <chrono>
#include <optional>
#include <string>

#include "sluice/store/errc.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "store_test_support.hpp"

namespace sluice::store {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::in;

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

class pg_pool_test : public ::testing::Test {
 protected:
  pool_options options(std::size_t max_connections = 8, std::size_t max_waiters = 16) const {
    pool_options o;
    o.connection.conninfo = db_.conninfo();
    o.max_connections = max_connections;
    o.max_waiters = max_waiters;
    return o;
  }

  test::scratch_database db_;
  asio::io_context io_;
};

TEST_F(pg_pool_test, connects_lazily_and_reuses_returned_connections) {
  pg_pool pool(io_.get_executor(), options());
  EXPECT_FALSE(pool.healthy()) << "nothing tried yet";
  EXPECT_EQ(pool.stats().open, 0u);
  test::run(io_, [&]() -> asio::awaitable<void> {
    int first_pid = 0;
    {
      auto [ec, lease] = co_await pool.acquire(in(5s));
      EXPECT_FALSE(ec) << ec.message();
      first_pid = lease->backend_pid();
      EXPECT_EQ(pool.stats().open, 1u);
      EXPECT_EQ(pool.stats().idle, 0u);
    }
    EXPECT_EQ(pool.stats().idle, 1u);
    EXPECT_TRUE(pool.healthy());
    auto [ec, lease] = co_await pool.acquire(in(5s));
    EXPECT_FALSE(ec);
    EXPECT_EQ(lease->backend_pid(), first_pid);
    EXPECT_FALSE(co_await pool.ping(in(5s))) << "ping takes a second connection";
    EXPECT_EQ(pool.stats().open, 2u);
  }());
}

TEST_F(pg_pool_test, bounded_waiters_fail_at_once_with_pool_exhausted) {
  pg_pool pool(io_.get_executor(), options(2, 1));
  test::run(io_, [&]() -> asio::awaitable<void> {
    auto [ec1, a] = co_await pool.acquire(in(5s));
    auto [ec2, b] = co_await pool.acquire(in(5s));
    EXPECT_FALSE(ec1);
    EXPECT_FALSE(ec2);
    const int pid_a = a->backend_pid();

    std::optional<std::error_code> waiter_ec;
    int waiter_pid = 0;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          auto [ec, lease] = co_await pool.acquire(in(5s));
          waiter_ec = ec;
          if (lease)
            waiter_pid = lease->backend_pid();
        },
        asio::detached);
    co_await sleep_for(20ms);
    EXPECT_EQ(pool.stats().waiting, 1u);

    const auto start = clock::now();
    auto [ec3, c] = co_await pool.acquire(in(5s));
    EXPECT_EQ(ec3, errc::pool_exhausted);
    EXPECT_EQ(classify(ec3), failure_kind::overloaded);
    EXPECT_LT(clock::now() - start, 50ms) << "no waiting at the bound";

    a.release();
    co_await sleep_for(20ms);
    CO_ASSERT_TRUE(waiter_ec.has_value());
    EXPECT_FALSE(*waiter_ec);
    EXPECT_EQ(waiter_pid, pid_a) << "the returned connection went to the waiter";
  }());
}

TEST_F(pg_pool_test, waiter_times_out_at_its_deadline) {
  pg_pool pool(io_.get_executor(), options(1));
  test::run(io_, [&]() -> asio::awaitable<void> {
    auto [ec1, held] = co_await pool.acquire(in(5s));
    EXPECT_FALSE(ec1);
    const auto start = clock::now();
    auto [ec2, none] = co_await pool.acquire(in(100ms));
    EXPECT_EQ(ec2, errc::timeout);
    EXPECT_GE(clock::now() - start, 95ms);
    EXPECT_EQ(pool.stats().waiting, 0u);
  }());
}

TEST_F(pg_pool_test, broken_and_dirty_connections_are_dropped_not_reused) {
  pg_pool pool(io_.get_executor(), options(2));
  test::run(io_, [&]() -> asio::awaitable<void> {
    int killed_pid = 0;
    {
      auto [ec, lease] = co_await pool.acquire(in(5s));
      EXPECT_FALSE(ec);
      killed_pid = lease->backend_pid();
    }
    // The server ends the idle connection (what a restart does to all of them).
    db_.query("SELECT pg_terminate_backend(" + std::to_string(killed_pid) + ")");
    co_await sleep_for(50ms);
    {
      auto [ec, lease] = co_await pool.acquire(in(5s));
      EXPECT_FALSE(ec) << ec.message();
      EXPECT_NE(lease->backend_pid(), killed_pid);
      const pg_result r = co_await lease->execute("SELECT 1", in(5s));
      EXPECT_FALSE(r.ec) << r.message;
      // Left inside a transaction: must not be handed to the next user.
      EXPECT_FALSE((co_await lease->execute("BEGIN", in(5s))).ec);
    }
    EXPECT_EQ(pool.stats().idle, 0u);
    EXPECT_EQ(pool.stats().open, 0u);
  }());
}

TEST_F(pg_pool_test, failed_connects_back_off_and_fail_fast) {
  pool_options o = options();
  o.connection.conninfo =
      test::with_options(db_.conninfo(), {{"host", "127.0.0.1"}, {"port", "1"}});
  o.reconnect_backoff_min = 300ms;
  pg_pool pool(io_.get_executor(), o);
  test::run(io_, [&]() -> asio::awaitable<void> {
    auto [ec, lease] = co_await pool.acquire(in(5s));
    EXPECT_EQ(ec, errc::connection_failed);
    EXPECT_FALSE(pool.healthy());
    const auto start = clock::now();
    for (int i = 0; i < 1000; ++i) {
      auto [again, none] = co_await pool.acquire(in(5s));
      EXPECT_EQ(again, errc::connection_failed);
    }
    EXPECT_LT(clock::now() - start, 250ms) << "inside the backoff no connect is tried";
    EXPECT_EQ(co_await pool.ping(in(1s)), errc::connection_failed);
    EXPECT_EQ(pool.stats().open, 0u);
  }());
}

TEST_F(pg_pool_test, execute_runs_one_statement_and_returns_the_connection) {
  pg_pool pool(io_.get_executor(), options(1));
  test::run(io_, [&]() -> asio::awaitable<void> {
    const pg_statement select{.sql = "SELECT 40 + 2"};
    const pg_result r = co_await pool.execute(select, in(5s));
    EXPECT_FALSE(r.ec) << r.message;
    CO_ASSERT_EQ(r.rows.size(), 1u);
    EXPECT_EQ(r.rows[0][0], "42");
    EXPECT_EQ(pool.stats().idle, 1u) << "the connection is back in the pool";
    pool.shutdown();
    const pg_result refused = co_await pool.execute(select, in(5s));
    EXPECT_EQ(refused.ec, errc::shut_down) << "a failed acquire is the result's error";
  }());
}

TEST_F(pg_pool_test, shutdown_fails_waiters_and_later_acquires) {
  pg_pool pool(io_.get_executor(), options(1));
  test::run(io_, [&]() -> asio::awaitable<void> {
    auto [ec, held] = co_await pool.acquire(in(5s));
    EXPECT_FALSE(ec);
    std::optional<std::error_code> waiter_ec;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          auto [e, lease] = co_await pool.acquire(in(5s));
          waiter_ec = e;
        },
        asio::detached);
    co_await sleep_for(20ms);
    const auto start = clock::now();
    pool.shutdown();
    co_await sleep_for(5ms);
    CO_ASSERT_TRUE(waiter_ec.has_value());
    EXPECT_EQ(*waiter_ec, errc::shut_down);
    EXPECT_LT(clock::now() - start, 100ms);
    auto [later, none] = co_await pool.acquire(in(5s));
    EXPECT_EQ(later, errc::shut_down);
    held.release();
    EXPECT_EQ(pool.stats().open, 0u);
  }());
}

}  // namespace
}  // namespace sluice::store
