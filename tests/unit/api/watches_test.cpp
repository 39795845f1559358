#include <filesystem>
#include <functional>

#include "sluice/api/directory_watch.hpp"
#include "sluice/api/postgres_watch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "sluice_test/env.hpp"

namespace sluice::api {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

// Turns the loop until `done` holds or 10 s pass.
bool run_until(asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(10ms);
  }
  return done();
}

// Runs `task` on the loop until it completes (or 10 s pass).
bool complete(asio::io_context& io, asio::awaitable<void> task) {
  bool done = false;
  asio::co_spawn(io, std::move(task), [&done](std::exception_ptr) { done = true; });
  return run_until(io, [&] { return done; });
}

TEST(directory_watch, answers_at_once_and_then_from_its_thread) {
  test::temp_dir tmp;
  const auto dir = std::filesystem::path(tmp.path()) / "failover";
  std::filesystem::create_directory(dir);
  asio::io_context io;
  directory_watch watch(io.get_executor(), {dir}, 20ms);
  ASSERT_EQ(watch.last().dirs.size(), 1u);
  EXPECT_TRUE(watch.last().dirs[0].writable) << "checked in the constructor";

  std::filesystem::remove(dir);
  ASSERT_TRUE(run_until(io, [&] { return !watch.last().dirs[0].writable; }));
  EXPECT_EQ(watch.last().dirs[0].error, "No such file or directory");
  EXPECT_EQ(watch.last().dirs[0].dir, dir);

  std::filesystem::create_directory(dir);
  const auto before = watch.last().at;
  ASSERT_TRUE(run_until(io, [&] { return watch.last().dirs[0].writable; }));
  EXPECT_GT(watch.last().at, before) << "each answer carries when it was made";
  watch.stop();
}

TEST(directory_watch, stop_ends_the_thread_without_waiting_for_the_interval) {
  asio::io_context io;
  const auto started = std::chrono::steady_clock::now();
  {
    directory_watch watch(io.get_executor(), {"/nonexistent-sluice-dir"}, 1h);
    EXPECT_FALSE(watch.last().dirs[0].writable);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST(postgres_watch, reports_an_unreachable_server_after_start_and_stops) {
  asio::io_context io;
  store::pool_options o;
  // Port 1 on loopback: nothing listens, so connect is refused at once.
  o.connection.conninfo = "postgresql://127.0.0.1:1/sluice";
  o.connection.connect_timeout = 1s;
  o.max_connections = 1;
  store::pg_pool pool(io.get_executor(), o);
  postgres_watch watch(io.get_executor(), pool, {20ms, 1s});
  EXPECT_FALSE(watch.last().probed);

  ASSERT_TRUE(complete(io, watch.start()));
  EXPECT_TRUE(watch.last().probed) << "start() completes after the first ping";
  EXPECT_TRUE(watch.last().error);
  ASSERT_TRUE(complete(io, watch.stop()));
  pool.shutdown();
}

}  // namespace
}  // namespace sluice::api
