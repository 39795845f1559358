// What the retry scheduler publishes for a parked row, and the ordered-subscription hook read
// from the registry; no broker (retry_scheduler_amqptest sends them through RabbitMQ).
#include "sluice/delivery/retry_scheduler.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

parked_message row(std::string queue = "orders") {
  parked_message m;
  m.queue = std::move(queue);
  m.subscription = "billing";
  m.message_id = *uuid::parse("01890a5d-ac96-774b-bcce-b302099a8057");
  m.partition = "eu";
  m.headers = {{"queue", m.queue}, {"partition", "eu"}, {"traceId", "abc"}};
  m.created_ms = 1'720'000'123'999;
  m.payload = "{\"x\":1}";
  m.attempt = 4;
  return m;
}

const std::string* header(const amqp::outgoing_message& out, std::string_view name) {
  const auto* v = out.properties.headers->find(name);
  return v ? v->get_if<std::string>() : nullptr;
}

TEST(retry_message, goes_to_the_subscription_queue_on_the_default_exchange) {
  const auto queue_mode = retry_scheduler::to_outgoing(row(), false, false);
  EXPECT_EQ(queue_mode.exchange, "");
  EXPECT_EQ(queue_mode.routing_key, "sluice.orders");
  EXPECT_TRUE(queue_mode.mandatory);
  const auto broadcast = retry_scheduler::to_outgoing(row(), true, false);
  EXPECT_EQ(broadcast.exchange, "");
  EXPECT_EQ(broadcast.routing_key, "sluice.orders~billing");
  EXPECT_TRUE(broadcast.mandatory);
}

TEST(retry_message, carries_the_relays_properties_and_the_delivery_headers) {
  auto m = row();
  m.headers.emplace_back("transactionId", "tx-9");
  m.headers.emplace_back("x-sluice-released", "1");  // stale: never copied
  m.first_attempt_ms = 1'720'000'000'001;
  const auto out = retry_scheduler::to_outgoing(m, false, false);
  const auto& p = out.properties;
  EXPECT_EQ(p.message_id, m.message_id.to_string());
  EXPECT_EQ(p.content_type, "application/json");
  EXPECT_EQ(p.delivery_mode, amqp::delivery_mode_persistent);
  EXPECT_EQ(p.timestamp, 1'720'000'123u);
  EXPECT_EQ(p.correlation_id, "tx-9");
  EXPECT_EQ(out.body, m.payload);
  ASSERT_TRUE(header(out, "traceId"));
  EXPECT_EQ(*header(out, "traceId"), "abc");
  EXPECT_EQ(*header(out, "partition"), "eu");
  EXPECT_EQ(*header(out, "queue"), "orders");
  EXPECT_EQ(*header(out, attempt_header), "4");
  EXPECT_EQ(*header(out, first_attempt_header), "1720000000001");
  EXPECT_FALSE(header(out, released_header));
  const auto released = retry_scheduler::to_outgoing(m, false, true);
  ASSERT_TRUE(header(released, released_header));
  EXPECT_EQ(*header(released, released_header), "1");
}

TEST(retry_message, a_stored_header_the_relay_does_not_know_survives) {
  auto m = row();
  m.headers.emplace_back("custom", "kept");
  const auto out = retry_scheduler::to_outgoing(m, false, false);
  ASSERT_TRUE(header(out, "custom"));
  EXPECT_EQ(*header(out, "custom"), "kept");
}

TEST(retry_message, an_async_queue_name_is_still_published_as_a_plain_message) {
  // Such queues have no subscriptions; a stray row must not turn into an RPC request.
  const auto out = retry_scheduler::to_outgoing(row("@async.svc"), false, false);
  EXPECT_EQ(out.routing_key, "sluice.@async.svc");
  EXPECT_EQ(out.body, "{\"x\":1}");
  EXPECT_EQ(*header(out, "queue"), "@async.svc");
}

TEST(retry_message, ordered_by_reads_the_registry) {
  subscription_registry registry;
  subscription ordered;
  ordered.queue = "orders";
  ordered.name = "billing";
  ordered.url = "http://t/";
  ordered.ordering = ordering::partition;
  subscription plain = ordered;
  plain.name = "audit";
  plain.ordering = ordering::none;
  registry.replace_all({ordered, plain});
  const auto is_ordered = ordered_by(registry);
  EXPECT_TRUE(is_ordered("orders", "billing"));
  EXPECT_FALSE(is_ordered("orders", "audit"));
  EXPECT_FALSE(is_ordered("orders", "missing"));
}

}  // namespace
}  // namespace sluice::delivery
