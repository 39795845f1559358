// Broadcast mode through the real binary: two subscriptions of one broadcast queue each get every
// message, once; one whose target fails first attempts gets its retries on its own queue
// (sluice.<queue>~<name>), so the other sees no extra request.
#include <cstdio>

#include "e2e_support.hpp"

namespace sluice::delivery::e2e {
namespace {

using namespace std::chrono_literals;
using sluice::test::http_call;

class e2e_broadcast : public delivery_e2e {};

TEST_F(e2e_broadcast, every_subscription_gets_every_message_and_retries_stay_its_own) {
  constexpr std::size_t messages = 200;
  hook_target steady(loop_);
  hook_target flaky(loop_, [](const http::request& req, std::size_t) {
    return req.header("X-Sluice-Attempt").value_or("") == "1"
               ? http::response::text(500, "text/plain", "first attempts fail")
               : http::response::text(200, "text/plain", "ok");
  });
  sluice_process s(env({{"DELIVERY_BREAKER_FAILURES", "1000000"}}));
  const auto q = queue("e2e-fanout");
  delete_afterwards("sluice." + q + "~steady");
  delete_afterwards("sluice." + q + "~flaky");
  sluice::test::http_result mode;
  ASSERT_TRUE(eventually(
      [&] {
        mode = http_call(s.port(), "PUT", "/api/v1/queues/" + q, R"({"mode":"broadcast"})",
                         {{"Content-Type", "application/json"}});
        return mode.status != 503;
      },
      20s, 50ms));
  ASSERT_EQ(mode.status, 200) << mode.body;
  put_subscription(s, q, "steady", {{"url", steady.url()}});
  put_subscription(
      s, q, "flaky",
      {{"url", flaky.url()},
       {"retry", {{"maxAttempts", 5}, {"initialBackoffMs", 10}, {"maxBackoffMs", 50}}}});
  std::vector<json> items;
  for (std::size_t i = 0; i < messages; ++i)
    items.push_back({{"queue", q}, {"payload", {{"n", i}}}});
  const auto ids = push(s, items);
  ASSERT_EQ(ids.size(), messages);
  ASSERT_TRUE(eventually(
      [&] {
        return steady.successes_by_key().size() == messages &&
               flaky.successes_by_key().size() == messages;
      },
      30s))
      << steady.successes_by_key().size() << " " << flaky.successes_by_key().size() << "\n"
      << s.log().substr(0, 20000);
  const std::set<std::string> pushed(ids.begin(), ids.end());
  for (const auto* t : {&steady, &flaky}) {
    std::set<std::string> keys;
    for (const auto& [key, n] : t->successes_by_key()) {
      keys.insert(key);
      EXPECT_EQ(n, 1) << key;
    }
    EXPECT_EQ(keys, pushed);
  }
  EXPECT_EQ(steady.count(), messages) << "another subscription's retries reached this one";
  EXPECT_EQ(flaky.count(), 2 * messages);
  std::printf(
      "[measure] broadcast: %zu messages to two subscriptions; steady got %zu requests, "
      "flaky %zu (every first attempt failed)\n",
      messages, steady.count(), flaky.count());
}

}  // namespace
}  // namespace sluice::delivery::e2e
