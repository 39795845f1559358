// Deliveries through the real binary when things go wrong: sluice killed -9 with deliveries in
// flight to a slow target (nothing lost, duplicates bounded by what was held), a hanging target
// holding up only its own queue, two instances sharing one queue's deliveries, a 410 pausing the
// subscription until it is resumed, and the adaptive concurrency limit
// (sluice_delivery_concurrency_limit on /metrics) falling while the target answers 503 and
// climbing back once it recovers.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "e2e_support.hpp"
#include "independent_client.hpp"
#include "test_support.hpp"

namespace sluice::delivery::e2e {
namespace {

using namespace std::chrono_literals;
using sluice::test::http_call;

class e2e_resilience : public delivery_e2e {
 protected:
  std::vector<std::string> push_n(const sluice_process& s, const std::string& q, std::size_t n,
                                  const std::string& tag) {
    std::vector<json> items;
    for (std::size_t i = 0; i < n; ++i)
      items.push_back({{"queue", q},
                       {"partition", "p" + std::to_string(i % 8)},
                       {"payload", {{"tag", tag}, {"n", i}}}});
    return push(s, items);
  }

  static std::set<std::string> keys_of(const std::map<std::string, int>& m) {
    std::set<std::string> out;
    for (const auto& [k, n] : m)
      out.insert(k);
    return out;
  }
};

TEST_F(e2e_resilience, kill9_with_deliveries_in_flight_loses_nothing) {
  constexpr std::size_t messages = 300;
  constexpr int concurrency = 16;
  // Every fourth message fails its first attempt, so the kill also finds retries parked in
  // PostgreSQL (due within a second), not only deliveries in flight.
  hook_target target(loop_, [](const http::request& req, std::size_t) {
    const auto n = json::parse(req.body)["n"].get<int>();
    if (n % 4 == 0 && req.header("X-Sluice-Attempt").value_or("") == "1")
      return http::response::text(500, "text/plain", "first attempt fails");
    return http::response::text(200, "text/plain", "ok");
  });
  target.set_delay(200ms);
  const auto q = queue("e2e-kill9");
  std::vector<std::string> ids;
  std::size_t delivered_at_kill = 0;
  std::size_t parked_at_kill = 0;
  {
    sluice_process first(env());
    put_subscription(first, q, "hook",
                     {{"url", target.url()},
                      {"concurrency", concurrency},
                      {"retry", {{"initialBackoffMs", 1000}, {"maxBackoffMs", 1000}}}});
    ids = push_n(first, q, messages, "kill9");
    ASSERT_EQ(ids.size(), messages);
    ASSERT_TRUE(eventually([&] { return target.successes_by_key().size() >= 80; }, 30s))
        << first.log();
    first.kill9();
    delivered_at_kill = target.successes_by_key().size();
    parked_at_kill = retry_rows();
  }
  const auto t_restart = clock::now();
  sluice_process second(env());
  wait_consuming(second, q, "hook");
  // (A retry row the killed instance had claimed waits for its lease, 30 s, before it goes.)
  ASSERT_TRUE(eventually([&] { return target.successes_by_key().size() == messages; }, 90s))
      << target.successes_by_key().size() << "\n"
      << second.log().substr(0, 20000);
  const double seconds = std::chrono::duration<double>(clock::now() - t_restart).count();
  const auto successes = target.successes_by_key();
  std::size_t duplicates = 0;
  for (const auto& [key, n] : successes)
    duplicates += static_cast<std::size_t>(n - 1);
  std::printf(
      "[measure] kill -9 after %zu of %zu delivered, %zu retries parked; the rest %.2f s after "
      "the restart; %zu duplicate deliveries (requests in flight at the kill, answered by the "
      "target but never acked); target max in flight %d\n",
      delivered_at_kill, messages, parked_at_kill, seconds, duplicates, target.max_in_flight());
  EXPECT_LT(delivered_at_kill, messages);
  EXPECT_EQ(keys_of(successes), std::set<std::string>(ids.begin(), ids.end()));
  // Only what the killed instance held unacked (at most its prefetch) can come again, and a
  // parked retry it had published but not yet deleted (at most the rows parked at the kill).
  EXPECT_LE(duplicates, concurrency + parked_at_kill);
  EXPECT_LE(target.max_in_flight(), concurrency);
  EXPECT_TRUE(dlq(second, "queue=" + q).empty());
}

TEST_F(e2e_resilience, a_hanging_target_holds_up_only_its_own_queue) {
  constexpr int stuck_concurrency = 4;
  hook_target stuck(loop_);
  stuck.hang(true);
  hook_target fast(loop_);
  sluice_process s(env());
  const auto q_stuck = queue("e2e-hang");
  const auto q_fast = queue("e2e-unaffected");
  put_subscription(
      s, q_stuck, "hook",
      {{"url", stuck.url()}, {"concurrency", stuck_concurrency}, {"timeoutMs", 60000}});
  put_subscription(s, q_fast, "hook", {{"url", fast.url()}, {"concurrency", 8}});
  const auto held = push_n(s, q_stuck, 50, "held");
  ASSERT_TRUE(eventually([&] { return stuck.in_flight() == stuck_concurrency; }, 20s))
      << stuck.in_flight();
  const auto t0 = clock::now();
  const auto ids = push_n(s, q_fast, 500, "unaffected");
  ASSERT_TRUE(eventually([&] { return fast.successes_by_key().size() == ids.size(); }, 30s))
      << fast.successes_by_key().size();
  const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
  std::printf(
      "[measure] with %d requests hanging at one target, 500 messages of another queue "
      "delivered in %.2f s\n",
      stuck.in_flight(), seconds);
  EXPECT_EQ(stuck.in_flight(), stuck_concurrency) << "the hanging target got more than its bound";
  EXPECT_EQ(stuck.count(), 0u);
  stuck.hang(false);
  ASSERT_TRUE(eventually([&] { return stuck.successes_by_key().size() == held.size(); }, 30s))
      << stuck.successes_by_key().size();
  EXPECT_EQ(keys_of(stuck.successes_by_key()), std::set<std::string>(held.begin(), held.end()));
}

TEST_F(e2e_resilience, two_instances_share_one_queues_deliveries) {
  constexpr std::size_t messages = 2000;
  hook_target target(loop_);
  target.set_delay(5ms);
  sluice_process a(env({}, "a"));
  sluice_process b(env({{"SLUICE_ROLES", "workers"}}, "b"));
  const auto q = queue("e2e-share");
  put_subscription(a, q, "hook", {{"url", target.url()}, {"concurrency", 8}});
  wait_consuming(b, q, "hook");
  const auto ids = push_n(a, q, messages, "share");
  ASSERT_EQ(ids.size(), messages);
  ASSERT_TRUE(eventually([&] { return target.successes_by_key().size() == messages; }, 60s))
      << target.successes_by_key().size();
  const std::string series =
      "sluice_delivery_attempts_total{queue=\"" + q + "\",outcome=\"delivered\"}";
  double by_a = 0;
  double by_b = 0;
  // The counters are read after the last ack: wait until they add up.
  eventually(
      [&] {
        by_a = metric(a.port(), series);
        by_b = metric(b.port(), series);
        return by_a + by_b >= messages;
      },
      10s, 50ms);
  std::printf("[measure] two instances: a delivered %.0f (%.1f %%), b %.0f (%.1f %%) of %zu\n",
              by_a, 100 * by_a / messages, by_b, 100 * by_b / messages, messages);
  EXPECT_EQ(keys_of(target.successes_by_key()), std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(by_a + by_b, static_cast<double>(messages));
  EXPECT_GE(by_a, 0.2 * messages);
  EXPECT_GE(by_b, 0.2 * messages);
}

TEST_F(e2e_resilience, a_410_pauses_the_subscription_until_resumed) {
  std::atomic<bool> gone{true};
  hook_target target(loop_, [&](const http::request&, std::size_t) {
    return gone ? http::response::text(410, "text/plain", "this hook is gone")
                : http::response::text(200, "text/plain", "ok");
  });
  sluice_process s(env());
  const auto q = queue("e2e-gone");
  put_subscription(s, q, "hook", {{"url", target.url()}});
  const auto first = push_n(s, q, 1, "gone");
  ASSERT_TRUE(
      eventually([&] { return get_subscription(s, q, "hook").value("paused", false); }, 20s))
      << s.log();
  const auto paused = get_subscription(s, q, "hook");
  EXPECT_EQ(paused["paused"], true);
  ASSERT_TRUE(paused["pausedReason"].is_string()) << paused.dump();
  EXPECT_NE(paused["pausedReason"].get<std::string>().find("410"), std::string::npos)
      << paused.dump();
  ASSERT_TRUE(eventually([&] { return dlq(s, "queue=" + q).size() == 1; }, 10s));
  EXPECT_EQ(dlq(s, "queue=" + q).front()["reason"], "gone");
  ASSERT_TRUE(eventually(
      [&] {
        const auto sub = get_subscription(s, q, "hook");
        return sub.contains("status") && sub["status"]["consuming"] == false;
      },
      10s))
      << get_subscription(s, q, "hook").dump();

  // While paused, messages wait in RabbitMQ: none reaches the target.
  const auto waiting = push_n(s, q, 5, "waiting");
  amqp::test::independent_client admin(amqp::test::broker_url());
  ASSERT_TRUE(eventually([&] { return admin.message_count("sluice." + q) == 5; }, 20s))
      << admin.message_count("sluice." + q);
  EXPECT_EQ(target.count(), 1u);

  gone = false;
  const auto resumed =
      http_call(s.port(), "POST", "/api/v1/queues/" + q + "/subscriptions/hook/resume");
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(resumed.json()["paused"], false);
  ASSERT_TRUE(eventually([&] { return target.successes_by_key().size() == 5; }, 20s))
      << s.log().substr(0, 20000);
  EXPECT_EQ(keys_of(target.successes_by_key()),
            std::set<std::string>(waiting.begin(), waiting.end()));
  EXPECT_EQ(get_subscription(s, q, "hook")["pausedReason"], nullptr);
}

TEST_F(e2e_resilience, concurrency_limit_falls_on_503_and_climbs_back) {
  constexpr int concurrency = 16;
  constexpr std::size_t messages = 3000;
  std::atomic<bool> overloaded{true};
  hook_target target(loop_, [&](const http::request&, std::size_t) {
    return overloaded ? http::response::text(503, "text/plain", "overloaded")
                      : http::response::text(200, "text/plain", "ok");
  });
  target.set_delay(10ms);
  // The breaker would stop the 503s from reaching the target at all; this is about AIMD.
  sluice_process s(env({{"DELIVERY_BREAKER_FAILURES", "1000000"}}));
  const auto q = queue("e2e-aimd");
  put_subscription(
      s, q, "hook",
      {{"url", target.url()},
       {"concurrency", concurrency},
       {"retry", {{"maxAttempts", 1000}, {"initialBackoffMs", 20}, {"maxBackoffMs", 200}}}});
  const std::string gauge = "sluice_delivery_concurrency_limit{queue=\"" + q + "\"}";
  EXPECT_EQ(metric(s.port(), gauge, -1), concurrency);
  const auto ids = push_n(s, q, messages, "aimd");
  ASSERT_EQ(ids.size(), messages);

  double lowest = concurrency;
  const auto t0 = clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        lowest = std::min(lowest, metric(s.port(), gauge, concurrency));
        return lowest <= concurrency / 4;
      },
      30s, 20ms))
      << "limit " << lowest << "\n"
      << s.log().substr(0, 20000);
  const double fell_after = std::chrono::duration<double>(clock::now() - t0).count();
  std::vector<double> during_overload;
  for (int i = 0; i < 20; ++i) {
    during_overload.push_back(metric(s.port(), gauge, concurrency));
    std::this_thread::sleep_for(25ms);  // samples of the gauge, not a wait for a condition
  }
  const double max_during = *std::max_element(during_overload.begin(), during_overload.end());

  overloaded = false;
  const auto t1 = clock::now();
  ASSERT_TRUE(eventually([&] { return metric(s.port(), gauge, 0) >= concurrency; }, 30s, 20ms))
      << "limit " << metric(s.port(), gauge, 0) << "\n"
      << s.log().substr(0, 20000);
  const double recovered_after = std::chrono::duration<double>(clock::now() - t1).count();
  ASSERT_TRUE(eventually([&] { return target.successes_by_key().size() == messages; }, 60s))
      << target.successes_by_key().size();
  std::printf(
      "[measure] AIMD: limit %d fell to %.0f within %.2f s of 503s (at most %.0f over the "
      "next 0.5 s), back to %d %.2f s after the target recovered; all %zu delivered\n",
      concurrency, lowest, fell_after, max_during, concurrency, recovered_after, messages);
  EXPECT_LT(max_during, concurrency) << "the limit stays down while the 503s go on";
  EXPECT_EQ(keys_of(target.successes_by_key()), std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(metric(s.port(), gauge, 0), concurrency);
}

}  // namespace
}  // namespace sluice::delivery::e2e
