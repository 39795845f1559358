// Durability of acknowledged pushes through PostgreSQL outages and sluice crashes. PostgreSQL
// sits behind a TCP proxy the test cuts and restores, so the shared server keeps running.
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <signal.h>
#include <thread>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// Pushers, `per_partition` of them in each of `partitions` partitions, each pushing batches of
// items numbered 0, 1, 2, ... in order and remembering which numbers were acknowledged (201).
// A pusher is known by k = 10 * partition + index (the payload's "k"). In even partitions
// items carry transactionIds, and every batch is sent twice at once on two connections, as a
// client does that retries a request it thinks lost: both answers must name the same ids. Odd
// partitions have no transactionIds, so both deduplication paths (transactionId and message
// id) are exercised. Every id of every 201 is kept, to check that each names a stored row.
class load {
 public:
  load(std::uint16_t port, int partitions, int batch, int per_partition = 2) {
    for (int p = 0; p < partitions; ++p) {
      for (int j = 0; j < per_partition; ++j)
        threads_.emplace_back([this, port, p, j, batch] { run(port, p, 10 * p + j, batch); });
    }
  }
  ~load() { stop(); }
  void stop() {
    stopping_ = true;
    for (auto& t : threads_) {
      if (t.joinable())
        t.join();
    }
  }
  std::map<int, std::vector<int>> acked() {
    std::lock_guard lock(mutex_);
    return acked_;
  }
  std::size_t acked_count() {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [k, v] : acked_)
      n += v.size();
    return n;
  }
  std::map<std::string, int> statuses() {
    std::lock_guard lock(mutex_);
    return statuses_;
  }
  std::set<std::string> answered_ids() {
    std::lock_guard lock(mutex_);
    return ids_;
  }
  // Retried batches whose two 201 answers named different ids.
  std::vector<std::string> disagreements() {
    std::lock_guard lock(mutex_);
    return disagreements_;
  }

 private:
  void record(const json& answer) {
    for (const auto& item : answer["items"]) {
      ++statuses_[item["status"].get<std::string>()];
      ids_.insert(item["id"].get<std::string>());
    }
  }

  void run(std::uint16_t port, int partition, int k, int batch) {
    const bool retries = partition % 2 == 0;
    int seq = 0;
    while (!stopping_) {
      try {
        http_connection conn(port);
        std::optional<http_connection> twin;
        if (retries)
          twin.emplace(port);
        while (!stopping_) {
          std::string body = R"({"items":[)";
          for (int i = 0; i < batch; ++i) {
            body += i ? "," : "";
            body += R"({"queue":"load","partition":"p)" + std::to_string(partition) +
                    R"(","payload":{"k":)" + std::to_string(k) + R"(,"seq":)" +
                    std::to_string(seq + i) + "}";
            if (retries)
              body += R"(,"transactionId":")" + std::to_string(k) + "-" + std::to_string(seq + i) +
                      "\"";
            body += "}";
          }
          body += "]}";
          std::future<http_result> again;
          if (twin)
            again = std::async(std::launch::async,
                               [&] { return twin->request("POST", "/api/v1/push", body); });
          const auto res = conn.request("POST", "/api/v1/push", body);
          std::optional<http_result> res2;
          if (again.valid())
            res2 = again.get();
          const bool ok = res.status == 201 || (res2 && res2->status == 201);
          {
            std::lock_guard lock(mutex_);
            if (res.status == 201)
              record(res.json());
            if (res2 && res2->status == 201)
              record(res2->json());
            if (res.status == 201 && res2 && res2->status == 201) {
              const auto a = res.json()["items"];
              const auto b = res2->json()["items"];
              for (std::size_t i = 0; i < a.size(); ++i) {
                if (a[i]["id"] != b[i]["id"])
                  disagreements_.push_back(a[i].dump() + " vs " + b[i].dump());
              }
            }
            if (ok) {
              for (int i = 0; i < batch; ++i)
                acked_[k].push_back(seq + i);
            }
          }
          if (ok)
            seq += batch;
          else
            std::this_thread::sleep_for(50ms);  // 503: back off, then retry the same numbers
        }
      } catch (const std::exception&) {
        std::this_thread::sleep_for(20ms);  // sluice down or restarting
      }
    }
  }

  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::map<int, std::vector<int>> acked_;
  std::map<std::string, int> statuses_;
  std::set<std::string> ids_;
  std::vector<std::string> disagreements_;
};

class push_failover : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir buffer_;
  tcp_proxy proxy_{"127.0.0.1", url_port(require_env("SLUICE_TEST_PG_URL"))};

  sluice_process::env_map env(sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", url_with_port(db_.url(), proxy_.port()));
    extra.try_emplace("FILE_BUFFER_DIR", buffer_.path());
    extra.try_emplace("FILE_BUFFER_FSYNC", "always");
    extra.try_emplace("DB_CONNECT_TIMEOUT_MS", "1000");
    extra.try_emplace("DB_STATEMENT_TIMEOUT_MS", "2000");
    extra.try_emplace("LOG_LEVEL", "info");
    return extra;
  }

  static json status(const sluice_process& s) {
    return http_call(s.port(), "GET", "/api/v1/status/buffers").json();
  }

  static bool wait_drained(const sluice_process& s, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto st = status(s);
      if (st["pending"] == 0 && !st["failoverActive"].get<bool>())
        return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // Every acknowledged number is stored exactly once, and in each partition the ids order the
  // rows as they were acknowledged. Unacknowledged numbers (in flight at a crash) may be
  // stored, but also only once.
  void verify(const std::map<int, std::vector<int>>& acked) {
    pg_session pg(db_.url());
    const auto rows = pg.query(
        "SELECT (payload->>'k')::int, (payload->>'seq')::int FROM sluice_messages WHERE queue = "
        "'load' ORDER BY id");
    std::map<int, std::vector<int>> stored;
    for (const auto& r : rows)
      stored[std::stoi(*r[0])].push_back(std::stoi(*r[1]));
    std::size_t total_acked = 0;
    for (const auto& [k, numbers] : acked) {
      total_acked += numbers.size();
      const auto& got = stored[k];
      std::map<int, int> times;
      for (int n : got)
        ++times[n];
      for (const auto& [n, c] : times)
        ASSERT_EQ(c, 1) << "pusher " << k << " number " << n << " stored " << c << " times";
      for (int n : numbers)
        ASSERT_EQ(times.count(n), 1u)
            << "pusher " << k << " acknowledged " << n << " but it is lost";
      for (std::size_t i = 1; i < got.size(); ++i) {
        ASSERT_LT(got[i - 1], got[i])
            << "pusher " << k << ": order by id differs from acknowledgement order";
      }
    }
    EXPECT_GT(total_acked, 0u);
  }

  // Every id any 201 named is a stored message, and two answers to the same batch agree.
  void verify_answers(load& pushers) {
    pg_session pg(db_.url());
    std::set<std::string> stored;
    for (const auto& r : pg.query("SELECT id::text FROM sluice_messages WHERE queue = 'load'"))
      stored.insert(*r[0]);
    std::size_t missing = 0;
    for (const auto& id : pushers.answered_ids()) {
      if (!stored.contains(id) && ++missing <= 5)
        ADD_FAILURE() << "answered id " << id << " names no stored message";
    }
    EXPECT_EQ(missing, 0u);
    const auto disagreements = pushers.disagreements();
    EXPECT_TRUE(disagreements.empty())
        << disagreements.size()
        << " retried items answered with other ids, first: " << disagreements.front();
    EXPECT_GT(pushers.answered_ids().size(), 0u);
  }
};

TEST_F(push_failover, postgres_cut_mid_load_loses_nothing_and_stores_nothing_twice) {
  sluice_process s(env());
  load pushers(s.port(), 4, 5);
  std::this_thread::sleep_for(1s);
  const auto before = pushers.acked_count();
  proxy_.cut();
  std::this_thread::sleep_for(2s);
  const auto ready = http_call(s.port(), "GET", "/health/ready");
  EXPECT_EQ(ready.status, 200) << "the buffer takes the pushes: the instance stays ready";
  EXPECT_EQ(ready.json()["status"], "degraded") << "readiness reports the outage";
  EXPECT_EQ(ready.json()["checks"]["postgres"]["ok"], false);
  const auto during = pushers.acked_count();
  EXPECT_GT(during, before) << "pushes keep being acknowledged while PostgreSQL is down";
  EXPECT_GT(status(s)["logs"]["failover"]["pending"].get<int>(), 0);
  proxy_.restore();
  // Under continuing load the backlog must drain and pushes go straight to PostgreSQL again.
  ASSERT_TRUE(wait_drained(s, 60s)) << status(s).dump() << "\n" << s.log();
  const auto after_drain = pushers.statuses()["stored"];
  std::this_thread::sleep_for(1s);
  EXPECT_GT(pushers.statuses()["stored"], after_drain) << "load still running is stored directly";
  pushers.stop();
  ASSERT_TRUE(wait_drained(s, 60s)) << status(s).dump() << "\n" << s.log();
  EXPECT_GT(pushers.statuses()["buffered"], 0);
  EXPECT_GT(pushers.statuses()["stored"], 0);
  verify(pushers.acked());
  verify_answers(pushers);
  EXPECT_EQ(http_call(s.port(), "GET", "/health/ready").status, 200);
}

TEST_F(push_failover, postgres_started_late_then_everything_buffered_is_replayed) {
  proxy_.cut();
  sluice_process s(env());
  const auto res = http_call(s.port(), "POST", "/api/v1/push",
                             R"({"items":[{"queue":"load","payload":{"k":0,"seq":0}}]})");
  ASSERT_EQ(res.status, 201) << res.body;
  EXPECT_EQ(res.json()["items"][0]["status"], "buffered");
  EXPECT_EQ(res.json()["dbHealthy"], false);
  const auto ready = http_call(s.port(), "GET", "/health/ready");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.json()["status"], "degraded") << ready.body;
  proxy_.restore();
  ASSERT_TRUE(wait_drained(s, 30s)) << s.log();
  verify({{0, {0}}});
}

TEST_F(push_failover, kill_9_mid_load_then_restart_keeps_every_acknowledged_item) {
  std::map<int, std::vector<int>> acked;
  std::optional<load> pushers_kept;
  {
    sluice_process s(env());
    auto& pushers = pushers_kept.emplace(s.port(), 4, 5);
    std::this_thread::sleep_for(700ms);
    proxy_.cut();  // so the crash leaves acknowledged records in the buffer only
    std::this_thread::sleep_for(1500ms);
    s.kill9();
    pushers.stop();
    acked = pushers.acked();
  }
  const auto stat = run_sluice({"buffer", "stat", buffer_.path()});
  EXPECT_EQ(stat.exit_code, 0) << stat.output;
  const auto verify_tool = run_sluice({"buffer", "verify", buffer_.path()});
  EXPECT_EQ(verify_tool.exit_code, 0) << verify_tool.output;

  proxy_.restore();
  sluice_process again(env());
  ASSERT_TRUE(wait_drained(again, 60s)) << again.log();
  verify(acked);
  verify_answers(*pushers_kept);
}

TEST_F(push_failover,
       a_full_buffer_with_postgres_down_answers_503_and_acknowledges_nothing_unstored) {
  proxy_.cut();
  sluice_process s(env({{"FILE_BUFFER_MAX_BYTES", "1m"}, {"FILE_BUFFER_SEGMENT_BYTES", "256k"}}));
  const std::string payload = "\"" + std::string(50'000, 'x') + "\"";
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < 40 && refused == 0; ++i) {
    const auto res = http_call(s.port(), "POST", "/api/v1/push",
                               R"({"items":[{"queue":"load","payload":{"k":0,"seq":)" +
                                   std::to_string(i) + R"(,"pad":)" + payload + "}}]}");
    if (res.status == 201) {
      ++accepted;
    } else {
      EXPECT_EQ(res.status, 503);
      EXPECT_EQ(res.json()["error"]["code"], "buffer_full");
      EXPECT_FALSE(res.header("retry-after").empty());
      ++refused;
    }
  }
  const auto ready = http_call(s.port(), "GET", "/health/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.json()["checks"]["buffer"]["ok"], false) << ready.body;
  EXPECT_GT(accepted, 5);
  EXPECT_EQ(refused, 1) << "1 MiB of 50 KB records fills up within 40 pushes";
  std::vector<int> numbers(static_cast<std::size_t>(accepted));
  for (int i = 0; i < accepted; ++i)
    numbers[static_cast<std::size_t>(i)] = i;
  proxy_.restore();
  ASSERT_TRUE(wait_drained(s, 30s)) << s.log();
  verify({{0, numbers}});
}

TEST_F(push_failover, sigterm_during_an_outage_keeps_the_buffer_for_the_next_start) {
  proxy_.cut();
  {
    sluice_process s(env());
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(http_call(s.port(), "POST", "/api/v1/push",
                          R"({"items":[{"queue":"load","payload":{"k":1,"seq":)" +
                              std::to_string(i) + "}}]}")
                    .status,
                201);
    }
    EXPECT_EQ(s.stop(SIGTERM), 0) << s.log();
  }
  proxy_.restore();
  sluice_process again(env());
  ASSERT_TRUE(wait_drained(again, 30s)) << again.log();
  verify({{1, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}});
}

TEST_F(push_failover, sigterm_lets_a_request_in_flight_finish_before_exiting) {
  sluice_process s(env({{"SHUTDOWN_GRACE_MS", "10000"}}));
  ASSERT_TRUE(wait_drained(s, 20s)) << s.log();
  proxy_.pause();  // PostgreSQL hangs: the push below waits for its 2 s statement deadline
  auto in_flight = std::async(std::launch::async, [&] {
    return http_call(s.port(), "POST", "/api/v1/push",
                     R"({"items":[{"queue":"load","payload":{"k":2,"seq":0}}]})");
  });
  std::this_thread::sleep_for(300ms);
  ::kill(s.pid(), SIGTERM);
  const auto res = in_flight.get();
  EXPECT_EQ(res.status, 201) << res.body;
  EXPECT_EQ(res.header("connection"), "close");
  // No second signal: one arriving after the drain would find the default action again.
  EXPECT_EQ(s.wait_for_exit(30s), 0) << s.log();
  proxy_.restore();
  sluice_process again(env());
  ASSERT_TRUE(wait_drained(again, 30s)) << again.log();
  verify({{2, {0}}});
}

}  // namespace
}  // namespace sluice::test
