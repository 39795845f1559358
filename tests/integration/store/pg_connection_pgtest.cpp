#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "sluice/store/errc.hpp"
#include "sluice/store/pg_connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "store_test_support.hpp"

namespace sluice::store {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::in;

class pg_connection_test : public ::testing::Test {
 protected:
  connection_options options() const {
    connection_options o;
    o.conninfo = db_.conninfo();
    return o;
  }

  test::scratch_database db_;
  asio::io_context io_;
};

TEST_F(pg_connection_test, connects_and_runs_a_simple_query) {
  test::run(io_, [&]() -> asio::awaitable<void> {
    pg_connection conn(io_.get_executor());
    const std::error_code ec = co_await conn.connect(options(), in(5s));
    EXPECT_FALSE(ec) << ec.message() << ": " << conn.error_message();
    EXPECT_TRUE(conn.is_idle());
    EXPECT_GT(conn.backend_pid(), 0);
    EXPECT_GE(conn.server_version(), 140000);

    const pg_result r = co_await conn.execute("SELECT 1, NULL::text, 'x y'", in(5s));
    EXPECT_FALSE(r.ec) << r.message;
    EXPECT_EQ(r.command_status, "SELECT 1");
    CO_ASSERT_EQ(r.rows.size(), 1u);
    CO_ASSERT_EQ(r.rows[0].size(), 3u);
    EXPECT_EQ(r.rows[0][0], "1");
    EXPECT_EQ(r.rows[0][1], std::nullopt);
    EXPECT_EQ(r.rows[0][2], "x y");

    const pg_result settings = co_await conn.execute(
        "SELECT current_setting('statement_timeout'), "
        "current_setting('client_encoding')",
        in(5s));
    CO_ASSERT_EQ(settings.rows.size(), 1u);
    EXPECT_EQ(settings.rows[0][0], "30s") << "statement timeout applied per session";
    EXPECT_EQ(settings.rows[0][1], "UTF8");
  }());
}

TEST_F(pg_connection_test, resolves_host_names_off_the_loop) {
  test::run(io_, [&]() -> asio::awaitable<void> {
    connection_options o = options();
    o.conninfo = test::with_options(o.conninfo, {{"host", "localhost"}});
    pg_connection conn(io_.get_executor());
    const std::error_code ec = co_await conn.connect(o, in(5s));
    EXPECT_FALSE(ec) << conn.error_message();
    const pg_result r = co_await conn.execute("SELECT 1", in(5s));
    EXPECT_FALSE(r.ec);
  }());
}

TEST_F(pg_connection_test, host_lists_are_resolved_off_the_loop_and_tried_in_order) {
  const std::string port = test::required_env("SLUICE_TEST_PG_PORT");
  test::run(io_, [&]() -> asio::awaitable<void> {
    pg_connection conn(io_.get_executor());
    // A name that does not resolve is skipped, as libpq skips it.
    connection_options o = options();
    o.conninfo = test::with_options(o.conninfo, {{"host", "no-such-host.invalid,localhost"}});
    std::error_code ec = co_await conn.connect(o, in(10s));
    EXPECT_FALSE(ec) << conn.error_message();
    EXPECT_FALSE((co_await conn.execute("SELECT 1", in(5s))).ec);

    // One name may become several addresses (localhost: ::1 and 127.0.0.1); each keeps the
    // port of its host: the closed port 1 first, then the server's.
    o = options();
    o.conninfo = test::with_options(
        o.conninfo, {{"host", "localhost,127.0.0.1,localhost"}, {"port", "1,1," + port}});
    ec = co_await conn.connect(o, in(10s));
    EXPECT_FALSE(ec) << conn.error_message();
    EXPECT_FALSE((co_await conn.execute("SELECT 1", in(5s))).ec);

    // Nothing resolves: every name is in the error.
    o = options();
    o.conninfo = test::with_options(o.conninfo, {{"host", "a.invalid,b.invalid"}});
    ec = co_await conn.connect(o, in(10s));
    EXPECT_EQ(ec, errc::connection_failed);
    EXPECT_NE(conn.error_message().find("could not resolve host \"a.invalid\""), std::string::npos)
        << conn.error_message();
    EXPECT_NE(conn.error_message().find("could not resolve host \"b.invalid\""), std::string::npos)
        << conn.error_message();
  }());
}

TEST_F(pg_connection_test, binds_binary_and_text_parameters) {
  test::run(io_, [&]() -> asio::awaitable<void> {
    pg_connection conn(io_.get_executor());
    EXPECT_FALSE(co_await conn.connect(options(), in(5s)));
    const uuid id = *uuid::parse("0190a0b1-2c3d-7e4f-8a9b-0c1d2e3f4a5b");
    pg_statement s{.sql = "SELECT $1::text, $2::int8, $3::uuid, $4::int4, $5::text, $6::text"};
    s.params.add_text_bytes("it's \"quoted\" \\ ünïcödé");
    s.params.add(std::int64_t{-1234567890123});
    s.params.add(id);
    s.params.add_text("42");
    s.params.add_null();
    s.params.add_text_bytes("");
    const pg_result r = co_await conn.execute(s, in(5s));
    EXPECT_FALSE(r.ec) << r.message;
    CO_ASSERT_EQ(r.rows.size(), 1u);
    EXPECT_EQ(r.rows[0][0], "it's \"quoted\" \\ ünïcödé");
    EXPECT_EQ(r.rows[0][1], "-1234567890123");
    EXPECT_EQ(r.rows[0][2], id.to_string());
    EXPECT_EQ(r.rows[0][3], "42");
    EXPECT_EQ(r.rows[0][4], std::nullopt);
    EXPECT_EQ(r.rows[0][5], "");

    // Binary text keeps its length, so a NUL reaches the server, which refuses it as data.
    pg_statement bad{.sql = "SELECT $1::text"};
    bad.params.add_text_bytes(std::string("a\0b", 3));
    const pg_result rejected = co_await conn.execute(bad, in(5s));
    EXPECT_EQ(rejected.ec, errc::query_failed);
    EXPECT_EQ(rejected.sqlstate, "22021");
    EXPECT_EQ(rejected.failure(), failure_kind::rejected);
    EXPECT_TRUE(conn.is_idle()) << "a rejected statement leaves the connection usable";
  }());
}

TEST_F(pg_connection_test, pipelines_many_statements_in_one_round_trip) {
  db_.query("CREATE TABLE t (n int PRIMARY KEY)");
  test::run(io_, [&]() -> asio::awaitable<void> {
    pg_connection conn(io_.get_executor());
    EXPECT_FALSE(co_await conn.connect(options(), in(5s)));
    std::vector<pg_statement> statements;
    for (int i = 0; i < 2000; ++i) {
      pg_statement& s = statements.emplace_back(
          pg_statement{.sql = "INSERT INTO t VALUES ($1) RETURNING n * 2", .name = "insert_t"});
      s.params.add(std::int32_t{i});
    }
    const pg_pipeline_result r = co_await conn.execute_pipeline(statements, in(10s));
    EXPECT_FALSE(r.ec) << r.message;
    CO_ASSERT_EQ(r.results.size(), statements.size());
    for (int i = 0; i < 2000; ++i) {
      CO_ASSERT_EQ(r.results[i].rows.size(), 1u);
      EXPECT_EQ(r.results[i].rows[0][0], std::to_string(i * 2));
    }
    EXPECT_TRUE(conn.is_idle());

    // Prepared once per connection: the second pipeline only binds and executes.
    std::vector<pg_statement> more;
    pg_statement& s = more.emplace_back(
        pg_statement{.sql = "INSERT INTO t VALUES ($1) RETURNING n * 2", .name = "insert_t"});
    s.params.add(std::int32_t{5000});
    const pg_pipeline_result again = co_await conn.execute_pipeline(more, in(5s));
    EXPECT_FALSE(again.ec) << again.message;
    const pg_result prepared = co_await conn.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE name = 'insert_t'", in(5s));
    EXPECT_EQ(prepared.rows.at(0).at(0), "1");
  }());
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM t"), "2001");
}

TEST_F(pg_connection_test, a_failed_statement_rolls_back_the_whole_pipeline) {
  db_.query("CREATE TABLE t (n int PRIMARY KEY)");
  test::run(io_, [&]() -> asio::awaitable<void> {
    pg_connection conn(io_.get_executor());
    EXPECT_FALSE(co_await conn.connect(options(), in(5s)));
    std::vector<pg_statement> statements;
    for (int n : {1, 2, 2, 3}) {
      pg_statement& s = statements.emplace_back(pg_statement{.sql = "INSERT INTO t VALUES ($1)"});
      s.params.add(std::int32_t{n});
    }
    const pg_pipeline_result r = co_await conn.execute_pipeline(statements, in(5s));
    EXPECT_EQ(r.ec, errc::query_failed);
    EXPECT_EQ(r.sqlstate, "23505");
    EXPECT_EQ(r.failed_index, 2u);
    CO_ASSERT_EQ(r.results.size(), 4u);
    EXPECT_FALSE(r.results[0].ec);
    EXPECT_EQ(r.results[2].ec, errc::query_failed);
    EXPECT_EQ(r.results[3].ec, errc::pipeline_aborted);
    EXPECT_TRUE(conn.is_idle());
  }());
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM t"), "0") << "one transaction per pipeline";
}

TEST_F(pg_connection_test, deadline_closes_the_connection_with_timeout) {
  test::run(io_, [&]() -> asio::awaitable<void> {
    pg_connection conn(io_.get_executor());
    EXPECT_FALSE(co_await conn.connect(options(), in(5s)));
    const int pid = conn.backend_pid();
    const auto start = clock::now();
    const pg_result r = co_await conn.execute("SELECT pg_sleep(5)", in(200ms));
    const auto took = clock::now() - start;
    EXPECT_EQ(r.ec, errc::timeout);
    EXPECT_NE(r.ec, errc::connection_lost);
    EXPECT_TRUE(is_unavailable(r.ec, r.sqlstate));
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 1s) << "the deadline, not the query, ends the wait";
    EXPECT_FALSE(conn.is_open()) << "a connection cut mid-operation is not reusable";

    // client_connection_check_interval makes the server drop the orphaned query.
    bool gone = false;
    for (int i = 0; i < 40 && !gone; ++i) {
      gone = db_.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                        std::to_string(pid)) == "0";
      if (!gone)
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(gone) << "backend " << pid << " still running the abandoned query";
  }());
}

TEST_F(pg_connection_test, statement_timeout_is_a_server_error_not_a_deadline) {
  test::run(io_, [&]() -> asio::awaitable<void> {
    connection_options o = options();
    o.statement_timeout = 100ms;
    pg_connection conn(io_.get_executor());
    EXPECT_FALSE(co_await conn.connect(o, in(5s)));
    const pg_result r = co_await conn.execute("SELECT pg_sleep(2)", in(5s));
    EXPECT_EQ(r.ec, errc::query_failed);
    EXPECT_EQ(r.sqlstate, "57014");
    EXPECT_EQ(r.failure(), failure_kind::unavailable);
    EXPECT_TRUE(conn.is_idle());
  }());
}

TEST_F(pg_connection_test, refused_connect_fails_fast) {
  test::run(io_, [&]() -> asio::awaitable<void> {
    connection_options o = options();
    o.conninfo = test::with_options(o.conninfo, {{"host", "127.0.0.1"}, {"port", "1"}});
    pg_connection conn(io_.get_executor());
    const auto start = clock::now();
    const std::error_code ec = co_await conn.connect(o, in(5s));
    EXPECT_EQ(ec, errc::connection_failed);
    EXPECT_LT(clock::now() - start, 1s);
    EXPECT_NE(conn.error_message().find("refused"), std::string::npos) << conn.error_message();
    EXPECT_TRUE(is_unavailable(ec));
    const pg_result r = co_await conn.execute("SELECT 1", in(1s));
    EXPECT_EQ(r.ec, errc::connection_lost);
  }());
}

TEST_F(pg_connection_test, silent_server_hits_connect_timeout_or_deadline) {
  // Accepts TCP (the kernel completes the handshake) but never answers the startup packet.
  asio::ip::tcp::acceptor mute(io_, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = std::to_string(mute.local_endpoint().port());
  test::run(io_, [&]() -> asio::awaitable<void> {
    connection_options o = options();
    o.conninfo = test::with_options(o.conninfo, {{"host", "127.0.0.1"}, {"port", port}});
    o.connect_timeout = 200ms;
    pg_connection conn(io_.get_executor());
    auto start = clock::now();
    EXPECT_EQ(co_await conn.connect(o, in(5s)), errc::connection_failed);
    EXPECT_GE(clock::now() - start, 190ms);
    EXPECT_LT(clock::now() - start, 1s);

    o.connect_timeout = 5s;
    start = clock::now();
    EXPECT_EQ(co_await conn.connect(o, in(150ms)), errc::timeout) << "the caller's deadline";
    EXPECT_LT(clock::now() - start, 400ms);
  }());
}

TEST_F(pg_connection_test, listen_wakes_on_a_notification_from_another_session) {
  test::run(io_, [&]() -> asio::awaitable<void> {
    pg_connection listener(io_.get_executor());
    EXPECT_FALSE(co_await listener.connect(options(), in(5s)));
    CO_ASSERT_TRUE(!(co_await listener.execute("LISTEN sluice_test", in(5s))).ec);

    // Nothing sent: the wait ends at its deadline and the connection stays usable.
    const auto start = clock::now();
    EXPECT_EQ(co_await listener.wait_notification(in(150ms)), errc::timeout);
    EXPECT_GE(clock::now() - start, 140ms);
    EXPECT_TRUE(listener.is_idle());
    EXPECT_TRUE(listener.take_notifications().empty());

    pg_connection sender(io_.get_executor());
    EXPECT_FALSE(co_await sender.connect(options(), in(5s)));
    auto notify_later = [&]() -> asio::awaitable<void> {
      asio::steady_timer t(io_.get_executor(), 100ms);
      co_await t.async_wait(asio::use_awaitable);
      co_await sender.execute("NOTIFY sluice_test, 'payments'; NOTIFY sluice_test, 'orders'",
                              in(5s));
    };
    asio::co_spawn(io_, notify_later(), asio::detached);
    const auto waited_from = clock::now();
    EXPECT_FALSE(co_await listener.wait_notification(in(5s)));
    EXPECT_LT(clock::now() - waited_from, 2s);
    auto got = listener.take_notifications();
    // Both NOTIFYs of one transaction are delivered together after its commit.
    if (got.size() < 2) {
      EXPECT_FALSE(co_await listener.wait_notification(in(2s)));
      for (auto& n : listener.take_notifications())
        got.push_back(std::move(n));
    }
    CO_ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].channel, "sluice_test");
    EXPECT_EQ(got[0].payload, "payments");
    EXPECT_EQ(got[1].payload, "orders");
    EXPECT_EQ(got[0].sender_pid, sender.backend_pid());

    // A notification that arrives while a statement runs is kept for take_notifications().
    // Another session: `sender` may still be reading its own answer above.
    pg_connection second(io_.get_executor());
    EXPECT_FALSE(co_await second.connect(options(), in(5s)));
    const pg_result sent = co_await second.execute("NOTIFY sluice_test, 'during'", in(5s));
    EXPECT_FALSE(sent.ec) << sent.message;
    const pg_result slept = co_await listener.execute("SELECT pg_sleep(0.2)", in(5s));
    EXPECT_FALSE(slept.ec) << slept.message;
    auto during = listener.take_notifications();
    if (during.empty()) {
      EXPECT_FALSE(co_await listener.wait_notification(in(2s)));
      during = listener.take_notifications();
    }
    CO_ASSERT_EQ(during.size(), 1u);
    EXPECT_EQ(during[0].payload, "during");
  }());
}

TEST_F(pg_connection_test, a_terminated_listener_ends_its_wait_with_connection_lost) {
  test::run(io_, [&]() -> asio::awaitable<void> {
    pg_connection listener(io_.get_executor());
    EXPECT_FALSE(co_await listener.connect(options(), in(5s)));
    CO_ASSERT_TRUE(!(co_await listener.execute("LISTEN sluice_test", in(5s))).ec);
    const int pid = listener.backend_pid();
    pg_connection killer(io_.get_executor());
    EXPECT_FALSE(co_await killer.connect(options(), in(5s)));
    auto kill_later = [&]() -> asio::awaitable<void> {
      asio::steady_timer t(io_.get_executor(), 100ms);
      co_await t.async_wait(asio::use_awaitable);
      co_await killer.execute("SELECT pg_terminate_backend(" + std::to_string(pid) + ")", in(5s));
    };
    auto wait_lost = [&]() -> asio::awaitable<std::error_code> {
      co_return co_await listener.wait_notification(in(10s));
    };
    // Both run to their end before `killer` goes out of scope: detached, the kill could still
    // be waiting for its result when the wait had already ended and the test returned (an
    // ASan use-after-free in CI).
    using namespace asio::experimental::awaitable_operators;
    const auto start = clock::now();
    auto kill = kill_later();
    auto wait = wait_lost();
    const std::error_code lost = co_await (std::move(kill) && std::move(wait));
    EXPECT_EQ(lost, errc::connection_lost);
    EXPECT_LT(clock::now() - start, 5s);
    EXPECT_FALSE(listener.is_open());
  }());
}

TEST_F(pg_connection_test, close_from_elsewhere_ends_a_notification_wait) {
  test::run(io_, [&]() -> asio::awaitable<void> {
    pg_connection listener(io_.get_executor());
    EXPECT_FALSE(co_await listener.connect(options(), in(5s)));
    CO_ASSERT_TRUE(!(co_await listener.execute("LISTEN sluice_test", in(5s))).ec);
    auto close_later = [&]() -> asio::awaitable<void> {
      asio::steady_timer t(io_.get_executor(), 100ms);
      co_await t.async_wait(asio::use_awaitable);
      listener.close();
    };
    asio::co_spawn(io_, close_later(), asio::detached);
    EXPECT_EQ(co_await listener.wait_notification(in(10s)), errc::shut_down);
  }());
}

}  // namespace
}  // namespace sluice::store
