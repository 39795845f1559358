// Batch mode through the real binary: messages go as JSON arrays of at most maxItems to the
// batch URL with the documented item fields, and the target's per-item statuses decide each
// message: a round trip acks every message once; items answered 500 are retried on their own
// and delivered later while the others are not sent again; a malformed answer (not JSON, an
// array of the wrong length) retries every item of the batch, all delivered once the target
// answers properly again.
#include <cstdio>

#include "e2e_support.hpp"
#include "independent_client.hpp"
#include "test_support.hpp"

namespace sluice::delivery::e2e {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t max_items = 10;

// One item of a batch as the target saw it.
struct seen_item {
  std::string id;
  int attempt = 0;
  int n = -1;  // the payload's "n"
  int answered = 0;
  std::size_t batch = 0;  // index of the batch request
};

// A batch target: parses each array, checks the documented fields, records the items and
// answers with `status_of(item, batch index)` per item, as plain statuses in item order for
// even batches and as {"id","status"} objects in reverse order for odd ones (both formats are
// documented). `malformed(batch index)` may answer the whole request instead.
class batch_target {
 public:
  using status_fn = std::function<int(const json& item, std::size_t batch)>;
  using malformed_fn =
      std::function<std::optional<http::response>(std::size_t batch, std::size_t items)>;

  batch_target(sluice::test::loop_thread& loop, status_fn status_of, malformed_fn malformed = {})
      : status_of_(std::move(status_of)),
        malformed_(std::move(malformed)),
        target_(loop, [this](const http::request& req, std::size_t index) {
          return answer(req, index);
        }) {}

  std::string url(const std::string& path) const { return target_.url(path); }
  std::string host_port() const { return "127.0.0.1:" + std::to_string(target_.port()); }
  std::vector<hit> hits() const { return target_.hits(); }
  std::vector<seen_item> items() const {
    std::lock_guard lock(mutex_);
    return items_;
  }
  std::vector<std::string> problems() const {
    std::lock_guard lock(mutex_);
    return problems_;
  }
  // Ids answered 2xx, with how often.
  std::map<std::string, int> delivered() const {
    std::map<std::string, int> out;
    for (const auto& it : items()) {
      if (it.answered >= 200 && it.answered < 300)
        ++out[it.id];
    }
    return out;
  }

 private:
  http::response answer(const http::request& req, std::size_t index) {
    std::lock_guard lock(mutex_);
    json batch;
    try {
      batch = json::parse(req.body);
    } catch (const std::exception& e) {
      problems_.push_back(std::string("not JSON: ") + e.what());
      return http::response::text(400, "text/plain", "");
    }
    if (req.path != "/batch")
      problems_.push_back("request to " + req.path);
    if (!batch.is_array() || batch.empty() || batch.size() > max_items)
      problems_.push_back("not an array of 1.." + std::to_string(max_items) + ": " + req.body);
    if (req.header("X-Sluice-Batch-Size").value_or("") != std::to_string(batch.size()))
      problems_.push_back("X-Sluice-Batch-Size " +
                          std::string(req.header("X-Sluice-Batch-Size").value_or("none")));
    if (req.header("Content-Type").value_or("") != "application/json")
      problems_.push_back("Content-Type");
    if (malformed_) {
      if (auto bad = malformed_(index, batch.size())) {
        for (const auto& item : batch)
          items_.push_back({item.value("id", ""), item.value("attempt", 0),
                            item.contains("payload") ? item["payload"].value("n", -1) : -1,
                            bad->status == 200 ? 0 : bad->status, index});
        return *bad;
      }
    }
    json out = json::array();
    std::vector<json> objects;
    for (const auto& item : batch) {
      for (const char* field : {"id", "queue", "partition", "attempt", "payload"}) {
        if (!item.contains(field))
          problems_.push_back(std::string("item without ") + field + ": " + item.dump());
      }
      const int status = status_of_(item, index);
      items_.push_back({item.value("id", ""), item.value("attempt", 0),
                        item.contains("payload") ? item["payload"].value("n", -1) : -1, status,
                        index});
      if (index % 2 == 0)
        out.push_back(status);
      else
        objects.push_back({{"id", item.value("id", "")}, {"status", status}});
    }
    for (auto it = objects.rbegin(); it != objects.rend(); ++it)
      out.push_back(*it);
    return http::response::json(200, out.dump());
  }

  status_fn status_of_;
  malformed_fn malformed_;
  mutable std::mutex mutex_;
  std::vector<seen_item> items_;
  std::vector<std::string> problems_;
  hook_target target_;  // last: destroyed (its handlers finished) before the state above
};

class e2e_batch : public delivery_e2e {
 protected:
  std::vector<std::string> push_n(const sluice_process& s, const std::string& q, std::size_t n) {
    std::vector<json> items;
    for (std::size_t i = 0; i < n; ++i)
      items.push_back({{"queue", q},
                       {"partition", "p" + std::to_string(i % 3)},
                       {"payload", {{"n", i}, {"text", "item " + std::to_string(i)}}}});
    return push(s, items, 50);
  }

  void put_batch_subscription(const sluice_process& s, const std::string& q,
                              const batch_target& t) {
    put_subscription(
        s, q, "batched",
        {{"url", t.url("/single")},
         {"batch", {{"url", t.url("/batch")}, {"maxItems", max_items}, {"maxWaitMs", 50}}},
         {"retry", {{"maxAttempts", 10}, {"initialBackoffMs", 10}, {"maxBackoffMs", 100}}}});
  }

  static std::set<std::string> keys_of(const std::map<std::string, int>& m) {
    std::set<std::string> out;
    for (const auto& [k, n] : m)
      out.insert(k);
    return out;
  }
};

TEST_F(e2e_batch, round_trip_acks_every_message_once) {
  constexpr std::size_t messages = 200;
  batch_target target(loop_, [](const json&, std::size_t) { return 200; });
  sluice_process s(env());
  const auto q = queue("e2e-batch");
  put_batch_subscription(s, q, target);
  const auto ids = push_n(s, q, messages);
  ASSERT_EQ(ids.size(), messages);
  ASSERT_TRUE(eventually([&] { return target.delivered().size() == messages; }, 30s))
      << target.delivered().size() << "\n"
      << s.log().substr(0, 20000);
  EXPECT_TRUE(target.problems().empty()) << target.problems().front();
  const auto items = target.items();
  const auto requests = target.hits().size();
  std::printf("[measure] batch round trip: %zu messages in %zu batch requests (%.1f per batch)\n",
              messages, requests, static_cast<double>(items.size()) / requests);
  EXPECT_EQ(items.size(), messages) << "every message exactly once";
  EXPECT_EQ(keys_of(target.delivered()), std::set<std::string>(ids.begin(), ids.end()));
  // The items carry what was pushed.
  std::set<int> ns;
  for (const auto& it : items) {
    EXPECT_EQ(it.attempt, 1);
    ns.insert(it.n);
  }
  EXPECT_EQ(ns.size(), messages);
  for (const auto& h : target.hits()) {
    EXPECT_EQ(h.header("X-Sluice-Queue"), q);
    const auto body = json::parse(h.body);
    for (const auto& item : body) {
      EXPECT_EQ(item["queue"], q);
      EXPECT_EQ(item["partition"], "p" + std::to_string(item["payload"]["n"].get<int>() % 3));
      EXPECT_EQ(item["payload"]["text"], "item " + std::to_string(item["payload"]["n"].get<int>()));
    }
  }
  // Acked: nothing left in RabbitMQ or parked; counted as delivered.
  amqp::test::independent_client admin(amqp::test::broker_url());
  EXPECT_EQ(admin.message_count("sluice." + q), 0u);
  EXPECT_EQ(retry_rows(), 0u);
  EXPECT_TRUE(eventually(
      [&] {
        return metric(s.port(), "sluice_delivery_attempts_total{queue=\"" + q +
                                    "\",outcome=\"delivered\"}") == messages;
      },
      5s));
}

TEST_F(e2e_batch, items_answered_500_are_retried_alone_the_others_not_again) {
  constexpr std::size_t messages = 100;
  // Every fifth message fails its first attempt.
  batch_target target(loop_, [](const json& item, std::size_t) {
    return item["payload"]["n"].get<int>() % 5 == 0 && item["attempt"] == 1 ? 500 : 200;
  });
  sluice_process s(env());
  const auto q = queue("e2e-batch-partial");
  put_batch_subscription(s, q, target);
  const auto ids = push_n(s, q, messages);
  ASSERT_EQ(ids.size(), messages);
  ASSERT_TRUE(eventually([&] { return target.delivered().size() == messages; }, 30s))
      << target.delivered().size() << "\n"
      << s.log().substr(0, 20000);
  EXPECT_TRUE(target.problems().empty()) << target.problems().front();
  std::map<int, std::vector<seen_item>> by_n;
  for (const auto& it : target.items())
    by_n[it.n].push_back(it);
  ASSERT_EQ(by_n.size(), messages);
  std::size_t retried = 0;
  for (const auto& [n, seen] : by_n) {
    if (n % 5 == 0) {
      ASSERT_EQ(seen.size(), 2u) << "message " << n;
      EXPECT_EQ(seen[0].answered, 500);
      EXPECT_EQ(seen[1].attempt, 2);
      EXPECT_EQ(seen[1].answered, 200);
      EXPECT_GT(seen[1].batch, seen[0].batch) << "delivered later, in another batch";
      ++retried;
    } else {
      EXPECT_EQ(seen.size(), 1u) << "message " << n << " was acked and must not come again";
    }
  }
  std::printf("[measure] batch partial failure: %zu of %zu items retried, %zu batch requests\n",
              retried, messages, target.hits().size());
  EXPECT_TRUE(dlq(s, "queue=" + q).empty());
  EXPECT_EQ(retry_rows(), 0u);
}

TEST_F(e2e_batch, a_malformed_batch_response_retries_every_item) {
  constexpr std::size_t messages = 60;
  // The first three batches are answered with text, the next two with an array one entry too
  // long; later ones properly.
  batch_target target(
      loop_, [](const json&, std::size_t) { return 200; },
      [](std::size_t batch, std::size_t items) -> std::optional<http::response> {
        if (batch < 3)
          return http::response::text(200, "text/plain", "thanks!");
        if (batch < 5)
          return http::response::json(200, json(std::vector<int>(items + 1, 200)).dump());
        return std::nullopt;
      });
  sluice_process s(env());
  const auto q = queue("e2e-batch-malformed");
  put_batch_subscription(s, q, target);
  const auto ids = push_n(s, q, messages);
  ASSERT_EQ(ids.size(), messages);
  ASSERT_TRUE(eventually([&] { return target.delivered().size() == messages; }, 30s))
      << target.delivered().size() << "\n"
      << s.log().substr(0, 20000);
  EXPECT_TRUE(target.problems().empty()) << target.problems().front();
  std::set<std::string> in_bad_batches;
  for (const auto& it : target.items()) {
    if (it.batch < 5)
      in_bad_batches.insert(it.id);
  }
  ASSERT_FALSE(in_bad_batches.empty());
  // Every item of a malformed batch came again, with a higher attempt, and was delivered once.
  std::map<std::string, int> last_attempt;
  for (const auto& it : target.items())
    last_attempt[it.id] = std::max(last_attempt[it.id], it.attempt);
  for (const auto& id : in_bad_batches)
    EXPECT_GE(last_attempt[id], 2) << id;
  for (const auto& [id, n] : target.delivered())
    EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(keys_of(target.delivered()), std::set<std::string>(ids.begin(), ids.end()));
  const auto hits = target.hits();
  const double recovery_s =
      hits.size() > 5 ? std::chrono::duration<double>(hits[5].at - hits[4].at).count() : 0;
  const double opened = metric(s.port(), "sluice_delivery_circuit_transitions_total{target=\"" +
                                             target.host_port() + "\",state=\"open\"}");
  std::printf(
      "[measure] malformed batch responses: %zu items in the 5 bad batches, all "
      "retried and delivered; %zu batch requests in all; %.2f s from the last bad batch to the "
      "next; circuit opened %.0f times\n",
      in_bad_batches.size(), hits.size(), recovery_s, opened);
  EXPECT_TRUE(dlq(s, "queue=" + q).empty());
}

}  // namespace
}  // namespace sluice::delivery::e2e
