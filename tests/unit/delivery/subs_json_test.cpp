#include "sluice/delivery/subscription_json.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

using namespace std::chrono_literals;

// 24 and 32 key bytes; the first is the Standard Webhooks spec's example secret.
constexpr std::string_view secret24 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view secret32 = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

subscription parsed(std::string_view body) {
  auto r = parse_subscription("orders", "billing", body, 16);
  if (auto* e = std::get_if<subscription_error>(&r))
    ADD_FAILURE() << body << ": " << e->field << " " << e->message;
  return std::holds_alternative<subscription>(r) ? std::get<subscription>(r) : subscription{};
}

subscription_error refused(std::string_view body, std::string_view name = "billing") {
  auto r = parse_subscription("orders", name, body, 16);
  if (std::holds_alternative<subscription>(r)) {
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  auto e = std::get<subscription_error>(r);
  EXPECT_FALSE(e.message.empty());
  return e;
}

TEST(subscription_json, fills_the_documented_defaults) {
  const auto s = parsed(R"({"url":"http://hooks.local:8080/in?token=a%20b"})");
  EXPECT_EQ(s.queue, "orders");
  EXPECT_EQ(s.name, "billing");
  EXPECT_EQ(s.address.host, "hooks.local");
  EXPECT_EQ(s.address.port, 8080);
  EXPECT_EQ(s.address.target, "/in?token=a%20b");
  EXPECT_EQ(s.method, "POST");
  EXPECT_TRUE(s.headers.empty());
  EXPECT_EQ(s.timeout, 30'000ms);
  EXPECT_EQ(s.concurrency, 16u);
  EXPECT_EQ(s.retry.max_attempts, 10u);
  EXPECT_EQ(s.retry.initial_backoff, 1'000ms);
  EXPECT_EQ(s.retry.max_backoff, 300'000ms);
  EXPECT_EQ(s.rate_limit_per_sec, 0);
  EXPECT_FALSE(s.batch);
  EXPECT_TRUE(s.secrets.empty());
  EXPECT_EQ(s.ordering, ordering::none);
}

TEST(subscription_json, reads_every_field) {
  const auto s = parsed(std::string(R"({"queue":"orders","name":"billing","url":"http://h/x",
    "method":"PUT","headers":{"Authorization":"Bearer t","X-Team":"a"},"timeoutMs":5000,
    "concurrency":4,"retry":{"maxAttempts":3,"initialBackoffMs":10,"maxBackoffMs":20},
    "rateLimitPerSec":2.5,"batch":{"url":"http://[::1]:9/b"},"secrets":[")") +
                        std::string(secret24) + R"(",")" + std::string(secret32) +
                        R"("],"ordering":"partition"})");
  EXPECT_EQ(s.address.target, "/x");
  EXPECT_EQ(s.method, "PUT");
  ASSERT_EQ(s.headers.size(), 2u);
  EXPECT_EQ(s.headers[0].first, "Authorization");
  EXPECT_EQ(s.timeout, 5000ms);
  EXPECT_EQ(s.concurrency, 4u);
  EXPECT_EQ(s.retry.max_attempts, 3u);
  EXPECT_EQ(s.retry.max_backoff, 20ms);
  EXPECT_EQ(s.rate_limit_per_sec, 2.5);
  ASSERT_TRUE(s.batch);
  EXPECT_EQ(s.batch->max_items, 100u);
  EXPECT_EQ(s.batch->max_wait, 100ms);
  ASSERT_TRUE(s.batch_address);
  EXPECT_EQ(s.batch_address->host, "::1");
  EXPECT_EQ(s.batch_address->port, 9);
  EXPECT_EQ(s.batch_address->target, "/b");
  EXPECT_EQ(s.secrets.size(), 2u);
  EXPECT_EQ(s.ordering, ordering::partition);
}

TEST(subscription_json, refuses_invalid_bodies_naming_the_field) {
  struct row {
    const char* body;
    const char* field;
  };
  const row rows[] = {
      {R"(not json)", "body"},
      {R"([1])", "body"},
      {R"({})", "url"},
      {R"({"url":"https://h/x"})", "url"},
      {R"({"url":"ftp://h/x"})", "url"},
      {R"({"url":"/relative"})", "url"},
      {R"({"url":"http://h/x#frag"})", "url"},
      {R"({"url":"http://u@h/x"})", "url"},
      {R"({"url":"http://h/a b"})", "url"},
      {R"({"url":"http://h/?a b"})", "url"},
      {R"({"url":"http://h","urls":1})", "urls"},
      {R"({"url":"http://h","url":"http://g"})", "url"},
      {R"({"url":"http://h","paused":true})", "paused"},
      {R"({"url":"http://h","queue":"other"})", "queue"},
      {R"({"url":"http://h","name":"other"})", "name"},
      {R"({"url":"http://h","method":"GET"})", "method"},
      {R"({"url":"http://h","headers":[]})", "headers"},
      {R"({"url":"http://h","headers":{"Host":"x"}})", "headers.Host"},
      {R"({"url":"http://h","headers":{"content-length":"1"}})", "headers.content-length"},
      {R"({"url":"http://h","headers":{"Transfer-Encoding":"x"}})", "headers.Transfer-Encoding"},
      {R"({"url":"http://h","headers":{"CONNECTION":"x"}})", "headers.CONNECTION"},
      {R"({"url":"http://h","headers":{"Idempotency-Key":"x"}})", "headers.Idempotency-Key"},
      {R"({"url":"http://h","headers":{"X-Sluice-Queue":"x"}})", "headers.X-Sluice-Queue"},
      {R"({"url":"http://h","headers":{"Webhook-Id":"x"}})", "headers.Webhook-Id"},
      {R"({"url":"http://h","headers":{"traceparent":"x"}})", "headers.traceparent"},
      {R"({"url":"http://h","headers":{"Bad Name":"x"}})", "headers.Bad Name"},
      {R"({"url":"http://h","headers":{"X-A":"a\r\nb"}})", "headers.X-A"},
      {R"({"url":"http://h","headers":{"X-A":1}})", "headers.X-A"},
      {R"({"url":"http://h","headers":{"X-A":"1","x-a":"2"}})", "headers.x-a"},
      {R"({"url":"http://h","timeoutMs":0})", "timeoutMs"},
      {R"({"url":"http://h","timeoutMs":"5"})", "timeoutMs"},
      {R"({"url":"http://h","timeoutMs":1.5})", "timeoutMs"},
      {R"({"url":"http://h","concurrency":0})", "concurrency"},
      {R"({"url":"http://h","concurrency":65536})", "concurrency"},
      {R"({"url":"http://h","retry":{"maxAttempts":0}})", "retry.maxAttempts"},
      {R"({"url":"http://h","retry":{"tries":3}})", "retry.tries"},
      {R"({"url":"http://h","retry":{"initialBackoffMs":500,"maxBackoffMs":100}})",
       "retry.maxBackoffMs"},
      {R"({"url":"http://h","retry":{"initialBackoffMs":400000}})", "retry.initialBackoffMs"},
      {R"({"url":"http://h","rateLimitPerSec":-1})", "rateLimitPerSec"},
      {R"({"url":"http://h","rateLimitPerSec":"5"})", "rateLimitPerSec"},
      {R"({"url":"http://h","batch":{}})", "batch.url"},
      {R"({"url":"http://h","batch":{"url":"http://b","maxItems":0}})", "batch.maxItems"},
      {R"({"url":"http://h","batch":{"url":"http://b","maxWaitMs":60001}})", "batch.maxWaitMs"},
      {R"({"url":"http://h","batch":{"url":"https://b"}})", "batch.url"},
      {R"({"url":"http://h","batch":{"url":"http://b","size":1}})", "batch.size"},
      {R"({"url":"http://h","secrets":"whsec_x"})", "secrets"},
      {R"({"url":"http://h","secrets":["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]})", "secrets[0]"},
      {R"({"url":"http://h","secrets":["whsec_not base64"]})", "secrets[0]"},
      {R"({"url":"http://h","secrets":["whsec_AAAA"]})", "secrets[0]"},
      {R"({"url":"http://h","ordering":"fifo"})", "ordering"},
  };
  for (const auto& r : rows) {
    const auto e = refused(r.body);
    EXPECT_EQ(e.field, r.field) << r.body << ": " << e.message;
  }
  EXPECT_EQ(refused(R"({"url":"http://h"})", "a.b").field, "name");
  EXPECT_EQ(refused(R"({"url":"http://h"})", "a~b").field, "name");
  EXPECT_EQ(refused(R"({"url":"http://h"})", "").field, "name");
  EXPECT_NE(refused(R"({"url":"https://h/x"})").message.find("https"), std::string::npos);
}

TEST(subscription_json, shows_secrets_masked_and_the_state) {
  auto s =
      parsed(std::string(R"({"url":"http://h/x","secrets":[")") + std::string(secret24) + R"("]})");
  s.updated_ms = 1'764'674'422'123;
  const auto j = to_api_json(s);
  EXPECT_EQ(j["queue"], "orders");
  EXPECT_EQ(j["name"], "billing");
  EXPECT_EQ(j["secrets"][0], "whsec_\u2026LaSw");
  EXPECT_EQ(j["paused"], false);
  EXPECT_TRUE(j["pausedReason"].is_null());
  EXPECT_EQ(j["updatedAt"], "2025-12-02T11:20:22.123Z");
  EXPECT_EQ(j["retry"]["maxBackoffMs"], 300000);
  EXPECT_EQ(to_json(s).find(secret24.substr(6)), std::string::npos);
  s.paused = true;
  s.paused_reason = "gone: 410";
  EXPECT_EQ(to_api_json(s)["pausedReason"], "gone: 410");
}

TEST(subscription_json, the_stored_form_reads_back_the_same) {
  const auto s = parsed(std::string(R"({"url":"http://h/x?y=1","method":"PATCH",
    "headers":{"X-A":"1"},"timeoutMs":7,"concurrency":3,"retry":{"maxAttempts":2},
    "rateLimitPerSec":1.25,"batch":{"url":"http://b/","maxItems":7,"maxWaitMs":9},
    "secrets":[")") + std::string(secret32) +
                        R"("],"ordering":"partition"})");
  const auto stored = to_stored_json(s);
  EXPECT_NE(stored.find(secret32.substr(6)), std::string::npos);
  auto back = parse_subscription("orders", "billing", stored, 99);
  ASSERT_TRUE(std::holds_alternative<subscription>(back)) << stored;
  EXPECT_TRUE(std::get<subscription>(back).same_as(s)) << stored;
  EXPECT_EQ(std::get<subscription>(back).batch_address->target, "/");
}

}  // namespace
}  // namespace sluice::delivery
