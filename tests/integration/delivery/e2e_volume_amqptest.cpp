// 10,000 pushed messages through the real binary to a target that fails 30 % of requests at
// random (500) and deduplicates on Idempotency-Key: every message is delivered successfully
// exactly once, none is lost, none is dead-lettered, and each message's attempts arrive numbered
// 1, 2, 3... Redeliveries are counted and reported.
#include <cstdio>
#include <random>
#include <set>

#include "e2e_support.hpp"

namespace sluice::delivery::e2e {
namespace {

using namespace std::chrono_literals;

class e2e_volume : public delivery_e2e {};

TEST_F(e2e_volume, ten_thousand_messages_through_thirty_percent_failures_exactly_once) {
  constexpr std::size_t messages = 10'000;
  constexpr double failure_rate = 0.30;
  std::mt19937_64 rng(std::random_device{}());
  // Called under the target's lock: keys already delivered answer 200 again (deduplication),
  // others fail at random.
  std::set<std::string> delivered;
  hook_target target(loop_, [&](const http::request& req, std::size_t) {
    const std::string key(req.header("Idempotency-Key").value_or(""));
    if (delivered.contains(key))
      return http::response::text(200, "text/plain", "duplicate");
    if (std::uniform_real_distribution<double>(0, 1)(rng) < failure_rate)
      return http::response::text(500, "text/plain", "random failure");
    delivered.insert(key);
    return http::response::text(200, "text/plain", "ok");
  });
  // Requests overlap (a short wait each), so the subscription's concurrency is used.
  target.set_delay(2ms);

  // The circuit breaker would open on runs of 5 failures (0.3^5: every ~400 requests) and hold
  // the run up for DELIVERY_BREAKER_OPEN_MS each time; it is not what this test is about.
  sluice_process s(env({{"DELIVERY_BREAKER_FAILURES", "1000"}}));
  const auto q = queue("e2e-volume");
  put_subscription(
      s, q, "hook",
      {{"url", target.url()},
       {"concurrency", 64},
       {"timeoutMs", 10000},
       {"retry", {{"maxAttempts", 30}, {"initialBackoffMs", 10}, {"maxBackoffMs", 200}}}});

  std::vector<json> items;
  for (std::size_t i = 0; i < messages; ++i)
    items.push_back({{"queue", q},
                     {"partition", "p" + std::to_string(i % 16)},
                     {"payload", {{"n", i}, {"text", "message " + std::to_string(i)}}}});
  const auto t0 = clock::now();
  const auto ids = push(s, items, 500);
  ASSERT_EQ(ids.size(), messages);
  const double push_seconds = std::chrono::duration<double>(clock::now() - t0).count();

  // Until all are delivered, or nothing new was delivered for 20 s (a lost message never
  // comes: waiting the whole deadline for it proves nothing more).
  std::size_t last_count = 0;
  auto last_progress = clock::now();
  const auto finished_or_stalled = [&] {
    const auto n = target.successes_by_key().size();
    if (n != last_count) {
      last_count = n;
      last_progress = clock::now();
    }
    return n >= messages || clock::now() - last_progress > 20s;
  };
  const bool done = eventually(finished_or_stalled, 180s, 50ms) && last_count >= messages;
  const double seconds =
      std::chrono::duration<double>((done ? clock::now() : last_progress) - t0).count();
  const auto hits = target.hits();
  const auto successes = target.successes_by_key();
  std::size_t failures = 0;
  for (const auto& h : hits)
    failures += h.status == 500 ? 1 : 0;
  std::size_t after_success = 0;  // requests for a key the target had already accepted
  for (const auto& [key, n] : successes)
    after_success += static_cast<std::size_t>(n - 1);
  int max_attempt = 0;
  for (const auto& h : hits)
    max_attempt = std::max(max_attempt, h.attempt());
  std::printf(
      "[measure] volume: %zu messages pushed in %.2f s, %s delivered after %.2f s; %zu requests "
      "(%zu answered 500 = %.1f %%, %zu redeliveries = requests beyond one per message, %zu "
      "after a success); highest attempt %d; target max in flight %d\n",
      messages, push_seconds, done ? "all" : "not all", seconds, hits.size(), failures,
      100.0 * failures / hits.size(), hits.size() - messages, after_success, max_attempt,
      target.max_in_flight());
  ASSERT_TRUE(done) << "delivered " << successes.size() << " of " << messages << "\n"
                    << s.log().substr(0, 20000);

  // Exactly the pushed ids, each accepted once by the target's deduplication.
  const std::set<std::string> pushed(ids.begin(), ids.end());
  std::set<std::string> accepted;
  for (const auto& [key, n] : successes)
    accepted.insert(key);
  EXPECT_EQ(accepted, pushed);
  EXPECT_EQ(after_success, 0u) << "a message acked by the target was delivered again";
  EXPECT_NEAR(static_cast<double>(failures) / hits.size(), failure_rate, 0.03);

  // Each message's attempts arrive numbered 1..k, in order, the last one the success.
  std::size_t misnumbered = 0;
  for (const auto& [key, list] : target.by_key()) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (list[i].attempt() != static_cast<int>(i + 1))
        ++misnumbered;
    }
  }
  EXPECT_EQ(misnumbered, 0u);

  // Nothing dead-lettered, nothing left parked.
  EXPECT_TRUE(dlq(s, "queue=" + q).empty());
  EXPECT_TRUE(eventually([&] { return retry_rows() == 0; }, 10s, 100ms)) << retry_rows();
  EXPECT_EQ(
      metric(s.port(), "sluice_delivery_attempts_total{queue=\"" + q + "\",outcome=\"delivered\"}"),
      static_cast<double>(messages));
  // sluice counted what the target saw.
  EXPECT_EQ(
      metric(s.port(), "sluice_delivery_attempts_total{queue=\"" + q + "\",outcome=\"retry\"}"),
      static_cast<double>(failures));
}

}  // namespace
}  // namespace sluice::delivery::e2e
