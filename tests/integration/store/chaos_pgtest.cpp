#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <netinet/in.h>
#include <random>
#include <signal.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/store/message_store.hpp"
#include "sluice/store/migrations.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "store_test_support.hpp"

// PostgreSQL crashes under a running pool: operations must fail fast as "unavailable", and the
// pool must come back by itself once the server does. Runs its own throwaway cluster
// (on SLUICE_TEST_CHAOS_PG_PORT, or a free port) so the shared server is never touched.
namespace sluice::store {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::in;

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// A port nothing listens on right now, below the kernel's ephemeral range (32768+): once the
// server is killed, an ephemeral port could be taken by another test's proxy or client, and
// the pool would reconnect to the wrong server.
std::string free_port() {
  std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(std::time(nullptr)));
  for (int attempt = 0; attempt < 200; ++attempt) {
    const auto port = static_cast<std::uint16_t>(20000 + rng() % 12000);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool free = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (fd >= 0)
      ::close(fd);
    if (free)
      return std::to_string(port);
  }
  throw std::runtime_error("cannot find a free port");
}

// A private PostgreSQL cluster in a temporary directory. PostgreSQL refuses to run as root,
// so as root its tools run as the postgres user.
class private_postgres {
 public:
  private_postgres()
      : bindir_(env_or("SLUICE_TEST_PG_BINDIR", "/usr/lib/postgresql/15/bin")),
        port_(env_or("SLUICE_TEST_CHAOS_PG_PORT", free_port().c_str())) {
    char tmpl[] = "/tmp/sluice-store-chaos-XXXXXX";
    if (!::mkdtemp(tmpl))
      throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    if (::geteuid() == 0)
      shell("chown postgres: " + dir_.string() + " && chmod 700 " + dir_.string());
    as_owner(bindir_ + "/initdb -D " + (dir_ / "data").string() +
             " -U postgres -A trust --no-sync -E UTF8 >" + (dir_ / "initdb.log").string() +
             " 2>&1");
    start();
  }

  ~private_postgres() {
    // Stop by the postmaster's pid (first line of postmaster.pid), then remove the cluster.
    if (const pid_t pid = postmaster_pid(); pid > 0) {
      ::kill(pid, SIGINT);  // fast shutdown
      for (int i = 0; i < 250 && ::kill(pid, 0) == 0; ++i)
        std::this_thread::sleep_for(20ms);
      if (::kill(pid, 0) == 0)
        ::kill(pid, SIGQUIT);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void start() {
    as_owner(bindir_ + "/pg_ctl -D " + (dir_ / "data").string() + " -l " +
             (dir_ / "server.log").string() + " -w -o \"-p " + port_ +
             " -k /tmp -c listen_addresses=127.0.0.1\" start >/dev/null");
  }

  // What a crash or power cut looks like to clients: backends die, no clean shutdown.
  void crash() {
    as_owner(bindir_ + "/pg_ctl -D " + (dir_ / "data").string() + " -m immediate stop >/dev/null");
  }

  std::string conninfo() const {
    return "host=127.0.0.1 port=" + port_ + " user=postgres dbname=postgres";
  }

 private:
  pid_t postmaster_pid() const {
    std::ifstream in(dir_ / "data" / "postmaster.pid");
    pid_t pid = 0;
    in >> pid;
    return pid;
  }

  static void shell(const std::string& command) {
    const int status = std::system(command.c_str());
    if (status != 0)
      throw std::runtime_error("failed: " + command);
  }

  void as_owner(const std::string& command) const {
    if (::geteuid() == 0) {
      shell("su postgres -s /bin/sh -c '" + command + "'");
    } else {
      shell(command);
    }
  }

  std::string bindir_;
  std::string port_;
  fs::path dir_;
};

// Runs a blocking step (pg_ctl) on its own thread while the loop keeps serving the pool.
asio::awaitable<void> off_loop(std::function<void()> step) {
  std::atomic<bool> done{false};
  std::exception_ptr error;
  std::thread worker([&] {
    try {
      step();
    } catch (...) {
      error = std::current_exception();
    }
    done = true;
  });
  asio::steady_timer tick(co_await asio::this_coro::executor);
  while (!done) {
    tick.expires_after(10ms);
    co_await tick.async_wait(asio::use_awaitable);
  }
  worker.join();
  if (error)
    std::rethrow_exception(error);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

struct attempt {
  clock::time_point start;
  clock::time_point end;
  std::error_code ec;
  failure_kind kind;
};

TEST(store_chaos, pool_fails_fast_while_postgres_is_down_and_recovers_after) {
  private_postgres pg;
  asio::io_context io;
  pool_options o;
  o.connection.conninfo = pg.conninfo();
  o.connection.connect_timeout = 1s;
  o.max_connections = 4;
  o.reconnect_backoff_min = 50ms;
  o.reconnect_backoff_max = 400ms;
  pg_pool pool(io.get_executor(), o);
  message_store store(pool);
  const migration_result m = test::run(io, apply_migrations(pool, in(10s)));
  ASSERT_FALSE(m.ec) << m.message;

  std::vector<attempt> attempts;
  std::vector<uuid> acknowledged;
  bool stop = false;
  uuid_v7_generator ids;
  const auto worker = [&]() -> asio::awaitable<void> {
    while (!stop) {
      std::vector<message> batch(20);
      for (message& msg : batch) {
        msg.id = ids.next();
        msg.created_ms = 1'700'000'000'000;
        msg.queue = "chaos";
        msg.partition = "Default";
        msg.payload = R"({"k":"v"})";
      }
      attempt a{clock::now(), {}, {}, {}};
      const insert_result r = co_await store.insert_batch(batch, in(2s));
      a.end = clock::now();
      a.ec = r.ec;
      a.kind = r.failure();
      attempts.push_back(a);
      for (const insert_outcome& out : r.items)
        acknowledged.push_back(out.id);
      co_await sleep_for(5ms);
    }
  };

  // restarting: pg.start() was called; restarted: it returned. The server may accept connections
  // a while before pg_ctl notices and returns (seconds on a loaded machine), so "down" is only
  // the time before restarting.
  clock::time_point crashed, restarting, restarted, recovered;
  bool unhealthy_seen = false;
  const auto controller = [&]() -> asio::awaitable<void> {
    co_await sleep_for(300ms);
    co_await off_loop([&] { pg.crash(); });
    crashed = clock::now();
    co_await sleep_for(800ms);
    unhealthy_seen = !pool.healthy();
    restarting = clock::now();
    co_await off_loop([&] { pg.start(); });
    restarted = clock::now();
    for (int i = 0; i < 500 && recovered == clock::time_point{}; ++i) {
      co_await sleep_for(10ms);
      for (const attempt& a : attempts) {
        if (a.start > restarted && !a.ec) {
          recovered = a.end;
          break;
        }
      }
    }
    co_await sleep_for(200ms);
    stop = true;
  };

  for (int i = 0; i < 4; ++i)
    asio::co_spawn(io, worker(), asio::detached);
  asio::co_spawn(io, controller(), asio::detached);
  io.restart();
  io.run();

  std::size_t before = 0, outage_failures = 0, after = 0;
  for (const attempt& a : attempts) {
    EXPECT_LT(a.end - a.start, 2100ms) << "every operation ends by its deadline";
    if (a.end < crashed && !a.ec)
      ++before;
    if (a.start > crashed && a.end < restarting) {
      // Down: refused connects and dead connections, never "your data is bad".
      EXPECT_TRUE(a.ec) << "an insert succeeded with PostgreSQL down";
      EXPECT_EQ(a.kind, failure_kind::unavailable) << a.ec.message();
      EXPECT_LT(a.end - a.start, 500ms) << "fails fast, no hang: " << a.ec.message();
      ++outage_failures;
    }
    if (a.start > restarted && !a.ec)
      ++after;
  }
  EXPECT_GT(before, 5u);
  EXPECT_GT(outage_failures, 20u);
  EXPECT_TRUE(unhealthy_seen);
  ASSERT_NE(recovered, clock::time_point{}) << "the pool never reconnected";
  EXPECT_LT(recovered - restarted, 1500ms) << "reconnects within the backoff cap";
  EXPECT_GT(after, 5u);
  EXPECT_TRUE(pool.healthy());

  // What was acknowledged as stored survived the crash.
  test::blocking_connection check(pg.conninfo());
  std::string list;
  for (const uuid& id : acknowledged)
    list += (list.empty() ? "'" : ",'") + id.to_string() + "'";
  ASSERT_FALSE(list.empty());
  EXPECT_EQ(check.scalar("SELECT count(*) FROM sluice_messages WHERE id IN (" + list + ")"),
            std::to_string(acknowledged.size()));
  pool.shutdown();
}

}  // namespace
}  // namespace sluice::store
