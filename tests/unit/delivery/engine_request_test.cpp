// What one delivery looks like on the wire: the message read back from its AMQP form, the
// request's headers (order, values, the traceparent rule, signing), batch requests, excerpts.
#include "sluice/delivery/delivery_request.hpp"
#include "sluice/delivery/webhook_signature.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

constexpr const char* id_text = "018f3a6e-8b3c-7d2e-9f10-1234567890ab";

amqp::delivery relay_delivery() {
  amqp::delivery d;
  d.properties.message_id = id_text;
  d.properties.content_type = "application/json";
  d.properties.timestamp = 1'700'000'000;
  amqp::field_table h;
  h.set("queue", "orders");
  h.set("partition", "customer-7");
  h.set("traceId", "4bf92f3577b34da6a3ce929d0e0e4736");
  h.set("task", "t1");
  d.properties.headers = h;
  d.body = R"({"a":1})";
  return d;
}

subscription target() {
  subscription s;
  s.queue = "orders";
  s.name = "billing";
  s.url = "http://127.0.0.1:8080/hook?x=1";
  s.address.host = "127.0.0.1";
  s.address.port = 8080;
  s.address.target = "/hook?x=1";
  s.headers = {{"Authorization", "Bearer t"},
               {"idempotency-key", "spoof"},
               {"Webhook-Signature", "spoof"},
               {"X-Custom", "1"}};
  return s;
}

std::optional<std::string> header(const http::client_request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name)
      return v;
  }
  return std::nullopt;
}

TEST(decode_delivery, reads_the_relays_first_publish) {
  std::string why;
  const auto m = decode_delivery(relay_delivery(), "orders", "billing", &why);
  ASSERT_TRUE(m) << why;
  EXPECT_EQ(m->message.message_id.to_string(), id_text);
  EXPECT_EQ(m->message.queue, "orders");
  EXPECT_EQ(m->message.subscription, "billing");
  EXPECT_EQ(m->message.partition, "customer-7");
  EXPECT_EQ(m->message.attempt, 1u);
  EXPECT_FALSE(m->message.first_attempt_ms);
  EXPECT_FALSE(m->released);
  EXPECT_EQ(m->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(m->message.payload, R"({"a":1})");
  // The acceptance time is the uuidv7's.
  EXPECT_EQ(m->message.created_ms, uuid::parse(id_text)->unix_ms());
  // The headers as published, in order.
  ASSERT_EQ(m->message.headers.size(), 4u);
  EXPECT_EQ(m->message.headers[0].first, "queue");
  EXPECT_EQ(m->message.headers[3].second, "t1");
}

TEST(decode_delivery, reads_the_retry_headers_and_keeps_them_out_of_the_message_headers) {
  auto d = relay_delivery();
  d.properties.headers->set(attempt_header, std::int32_t{4});
  d.properties.headers->set(first_attempt_header, std::int64_t{1'700'000'000'123});
  d.properties.headers->set(released_header, true);
  const auto m = decode_delivery(d, "orders", "billing", nullptr);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->message.attempt, 4u);
  EXPECT_EQ(m->message.first_attempt_ms, 1'700'000'000'123);
  EXPECT_TRUE(m->released);
  EXPECT_EQ(m->message.headers.size(), 4u);
  // Written as text by another client: read too.
  d.properties.headers->set(attempt_header, "7");
  EXPECT_EQ(decode_delivery(d, "orders", "billing", nullptr)->message.attempt, 7u);
  // Nonsense: attempt 1.
  d.properties.headers->set(attempt_header, "x");
  EXPECT_EQ(decode_delivery(d, "orders", "billing", nullptr)->message.attempt, 1u);
}

TEST(decode_delivery, refuses_what_is_no_sluice_message) {
  auto d = relay_delivery();
  d.properties.message_id.reset();
  std::string why;
  EXPECT_FALSE(decode_delivery(d, "orders", "billing", &why));
  EXPECT_EQ(why, "no message id");
  d.properties.message_id = "not-a-uuid";
  EXPECT_FALSE(decode_delivery(d, "orders", "billing", &why));
}

TEST(traceparent_for, passes_a_full_traceparent_on_as_it_is) {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  EXPECT_EQ(traceparent_for(tp, 5), tp);
  // Invalid ones give none: upper case, zero ids, version ff, wrong separators.
  EXPECT_FALSE(traceparent_for("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", 5));
  EXPECT_FALSE(traceparent_for("00-00000000000000000000000000000000-00f067aa0ba902b7-01", 5));
  EXPECT_FALSE(traceparent_for("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", 5));
  EXPECT_FALSE(traceparent_for("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 5));
  EXPECT_FALSE(traceparent_for("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", 5));
}

TEST(traceparent_for, makes_a_new_span_of_a_32_hex_trace_id) {
  EXPECT_EQ(traceparent_for("4bf92f3577b34da6a3ce929d0e0e4736", 0x00f067aa0ba902b7ULL),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(traceparent_for("4BF92F3577B34DA6A3CE929D0E0E4736", 0x1ULL),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000001-01");
  // A zero random number would be an invalid span id.
  EXPECT_EQ(traceparent_for("4bf92f3577b34da6a3ce929d0e0e4736", 0),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000001-01");
  EXPECT_FALSE(traceparent_for("00000000000000000000000000000000", 1));
  EXPECT_FALSE(traceparent_for("trace-1", 1));
  EXPECT_FALSE(traceparent_for("", 1));
  EXPECT_FALSE(traceparent_for("4bf92f3577b34da6a3ce929d0e0e473g", 1));
}

TEST(compose_delivery, sends_the_payload_with_sluices_headers_in_order) {
  const auto m = decode_delivery(relay_delivery(), "orders", "billing", nullptr);
  ASSERT_TRUE(m);
  const auto s = target();
  const auto r = compose_delivery(s, {}, *m, 1'700'000'000, 0xabcULL);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.host, "127.0.0.1");
  EXPECT_EQ(r.port, 8080);
  EXPECT_EQ(r.target, "/hook?x=1");
  EXPECT_EQ(r.body, R"({"a":1})");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"Content-Type", "application/json"},
      {"Idempotency-Key", id_text},
      {"X-Sluice-Queue", "orders"},
      {"X-Sluice-Partition", "customer-7"},
      {"X-Sluice-Attempt", "1"},
      {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000abc-01"},
      {"Authorization", "Bearer t"},
      {"X-Custom", "1"}};
  EXPECT_EQ(r.headers, expected);
}

TEST(compose_delivery, carries_the_attempt_and_the_method) {
  auto d = relay_delivery();
  d.properties.headers->set(attempt_header, std::int32_t{3});
  d.properties.headers->erase("traceId");
  const auto m = decode_delivery(d, "orders", "billing", nullptr);
  auto s = target();
  s.method = "PUT";
  const auto r = compose_delivery(s, {}, *m, 1, 1);
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(header(r, "X-Sluice-Attempt"), "3");
  EXPECT_FALSE(header(r, "traceparent"));
}

TEST(compose_delivery, signs_with_the_standard_webhooks_headers) {
  const auto m = decode_delivery(relay_delivery(), "orders", "billing", nullptr);
  auto s = target();
  s.secrets = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "not-a-secret"};
  std::size_t bad = 0;
  const auto keys = signing_keys_of(s, &bad);
  EXPECT_EQ(bad, 1u);
  ASSERT_EQ(keys.keys.size(), 1u);
  const auto r = compose_delivery(s, keys, *m, 1'614'265'330, 1);
  EXPECT_EQ(header(r, "webhook-id"), id_text);
  EXPECT_EQ(header(r, "webhook-timestamp"), "1614265330");
  EXPECT_EQ(header(r, "webhook-signature"),
            webhook_signature(keys.keys, id_text, "1614265330", R"({"a":1})"));
  // The subscription's own webhook-signature never goes out.
  std::size_t signatures = 0;
  for (const auto& [k, v] : r.headers)
    signatures += k == "webhook-signature" || k == "Webhook-Signature";
  EXPECT_EQ(signatures, 1u);
  // The three are last.
  EXPECT_EQ(r.headers.back().first, "webhook-signature");
}

TEST(compose_batch, goes_to_the_batch_url_with_its_own_id) {
  auto s = target();
  s.batch = batch_spec{};
  s.batch_address = target_address{"10.0.0.1", 9000, "/batch"};
  s.secrets = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
  const auto keys = signing_keys_of(s);
  const auto r = compose_batch(s, keys, "[]", 0, "batch_1", 42);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.host, "10.0.0.1");
  EXPECT_EQ(r.port, 9000);
  EXPECT_EQ(r.target, "/batch");
  EXPECT_EQ(header(r, "X-Sluice-Batch-Size"), "0");
  EXPECT_EQ(header(r, "webhook-id"), "batch_1");
  EXPECT_EQ(header(r, "webhook-signature"), webhook_signature(keys.keys, "batch_1", "42", "[]"));
  EXPECT_FALSE(header(r, "Idempotency-Key"));
}

}  // namespace
}  // namespace sluice::delivery
