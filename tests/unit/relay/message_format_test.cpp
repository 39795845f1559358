#include "sluice/relay/message_format.hpp"

#include "sluice/amqp/delivery.hpp"
#include "sluice/rpc/async_envelope.hpp"

#include <gtest/gtest.h>

namespace sluice::relay {
namespace {

message sample() {
  message m;
  m.id = *uuid::parse("0190c3a4-5b6c-7d8e-9f01-23456789abcd");
  m.created_ms = 1'720'000'123'456;
  m.queue = "orders";
  m.partition = "eu";
  m.payload = R"({"b":1,  "a":[1,2]})";
  return m;
}

const std::string* header(const amqp::message_properties& p, std::string_view key) {
  if (!p.headers)
    return nullptr;
  const auto* v = p.headers->find(key);
  return v == nullptr ? nullptr : v->get_if<std::string>();
}

TEST(relay_message_format, queue_mode_goes_to_the_queue_through_the_default_exchange) {
  message m = sample();
  const auto out = to_outgoing(m, queue_mode::queue);
  EXPECT_EQ(out->exchange, "");
  EXPECT_EQ(out->routing_key, "sluice.orders");
  EXPECT_TRUE(out->mandatory);
}

TEST(relay_message_format, broadcast_mode_goes_to_the_fanout_exchange) {
  message m = sample();
  const auto out = to_outgoing(m, queue_mode::broadcast);
  EXPECT_EQ(out->exchange, "sluice.orders");
  EXPECT_EQ(out->routing_key, "");
  EXPECT_FALSE(out->mandatory);
}

TEST(relay_message_format, properties_and_headers_follow_the_contract) {
  message m = sample();
  const auto out = to_outgoing(m, queue_mode::queue);
  const auto& p = out->properties;
  EXPECT_EQ(p.message_id, "0190c3a4-5b6c-7d8e-9f01-23456789abcd");
  EXPECT_EQ(p.content_type, "application/json");
  EXPECT_EQ(p.delivery_mode, std::optional<std::uint8_t>(2));
  EXPECT_EQ(p.timestamp, std::optional<std::uint64_t>(1'720'000'123));
  EXPECT_FALSE(p.correlation_id);
  ASSERT_TRUE(p.headers);
  EXPECT_EQ(p.headers->size(), 2u) << "absent optional fields are not sent as headers";
  ASSERT_NE(header(p, "queue"), nullptr);
  EXPECT_EQ(*header(p, "queue"), "orders");
  ASSERT_NE(header(p, "partition"), nullptr);
  EXPECT_EQ(*header(p, "partition"), "eu");
  EXPECT_EQ(out->body, R"({"b":1,  "a":[1,2]})") << "the payload bytes, not re-serialized";
}

TEST(relay_message_format, optional_fields_become_headers_and_correlation_id) {
  message m = sample();
  m.namespace_ = "shop";
  m.task = "ship";
  m.trace_id = "t-1";
  m.transaction_id = "order-1";
  const auto out = to_outgoing(m, queue_mode::broadcast);
  const auto& p = out->properties;
  EXPECT_EQ(p.correlation_id, "order-1");
  EXPECT_EQ(p.headers->size(), 6u);
  EXPECT_EQ(*header(p, "namespace"), "shop");
  EXPECT_EQ(*header(p, "task"), "ship");
  EXPECT_EQ(*header(p, "traceId"), "t-1");
  EXPECT_EQ(*header(p, "transactionId"), "order-1");
  EXPECT_EQ(amqp::oversized_property(p), nullptr);
}

TEST(relay_message_format, a_transaction_id_too_long_for_correlation_id_is_a_header_only) {
  // Pushes allow 256 bytes; AMQP's correlation_id holds 255. Sent there anyway, the message
  // could not be encoded (the relay looped on it before this was found).
  for (const std::size_t length : {255u, 256u}) {
    message m = sample();
    m.transaction_id = std::string(length, 't');
    m.trace_id = std::string(256, 'r');
    const auto out = to_outgoing(m, queue_mode::queue);
    EXPECT_EQ(out->properties.correlation_id.has_value(), length == 255) << length;
    EXPECT_EQ(*header(out->properties, "transactionId"), *m.transaction_id);
    EXPECT_EQ(amqp::oversized_property(out->properties), nullptr) << length;
  }
  amqp::message_properties too_long;
  too_long.correlation_id = std::string(256, 'c');
  EXPECT_STREQ(amqp::oversized_property(too_long), "correlation_id");
  too_long.correlation_id.reset();
  too_long.headers = amqp::field_table{{std::string(129, 'k'), std::string("v")}};
  EXPECT_STREQ(amqp::oversized_property(too_long), "a header name");
}

TEST(relay_message_format, names_and_modes) {
  EXPECT_EQ(amqp_name("a.b:c-d_e"), "sluice.a.b:c-d_e");
  EXPECT_EQ(parse_queue_mode("queue"), queue_mode::queue);
  EXPECT_EQ(parse_queue_mode("broadcast"), queue_mode::broadcast);
  EXPECT_FALSE(parse_queue_mode("Queue"));
  EXPECT_FALSE(parse_queue_mode(""));
  EXPECT_STREQ(to_string(queue_mode::broadcast), "broadcast");
  EXPECT_STREQ(to_string(queue_mode::queue), "queue");
}

// An async request as the requests module writes it into the push path.
message async_sample(const rpc::reply_address& reply = {}) {
  rpc::rpc_request r;
  r.service = "payments";
  r.flavour = "green";
  r.method = "PUT";
  r.target = "/charge/%2F1?x=1&x=2";
  r.headers = {{"Content-Type", "application/octet-stream"}, {"X-A", "1"}, {"x-a", "2"}};
  r.body = std::string(
      "\x00\x01"
      "binary\xff",
      9);
  message m;
  m.id = *uuid::parse("0190c3a4-5b6c-7d8e-9f01-23456789abcd");
  m.created_ms = 1'720'000'123'456;
  m.queue = rpc::async_queue("payments");
  m.partition = "Default";
  m.namespace_ = "shop";
  m.payload = rpc::encode_async_envelope(r, "shop", reply);
  return m;
}

amqp::delivery as_delivered(const amqp::outgoing_message& out) {
  amqp::delivery d;
  d.exchange = out.exchange;
  d.routing_key = out.routing_key;
  d.properties = out.properties;
  d.body = out.body;
  return d;
}

TEST(relay_message_format, an_async_request_goes_to_its_services_headers_exchange_as_the_request) {
  for (const auto mode : {queue_mode::queue, queue_mode::broadcast}) {
    message m = async_sample();
    const auto out = to_outgoing(m, mode);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->exchange, "shop.payments");
    EXPECT_EQ(out->routing_key, "");
    EXPECT_TRUE(out->mandatory) << "unroutable (no flavour queue yet) must come back";
    const auto& p = out->properties;
    EXPECT_EQ(p.message_id, "0190c3a4-5b6c-7d8e-9f01-23456789abcd");
    EXPECT_EQ(p.delivery_mode, std::optional<std::uint8_t>(2));
    EXPECT_FALSE(p.expiration) << "async requests wait however long it takes";
    EXPECT_FALSE(p.reply_to);
    EXPECT_FALSE(p.correlation_id);
    EXPECT_EQ(p.timestamp, std::optional<std::uint64_t>(1'720'000'123));
    EXPECT_EQ(amqp::oversized_property(p), nullptr);

    std::string why;
    const auto r = rpc::decode_request(as_delivered(*out), &why);
    ASSERT_TRUE(r) << why;
    EXPECT_EQ(r->id, "0190c3a4-5b6c-7d8e-9f01-23456789abcd");
    EXPECT_EQ(r->service, "payments");
    EXPECT_EQ(r->flavour, "green");
    EXPECT_EQ(r->method, "PUT");
    EXPECT_EQ(r->target, "/charge/%2F1?x=1&x=2");
    const rpc::header_list expected{
        {"Content-Type", "application/octet-stream"}, {"X-A", "1"}, {"x-a", "2"}};
    EXPECT_EQ(r->headers, expected);
    EXPECT_EQ(r->body, std::string("\x00\x01"
                                   "binary\xff",
                                   9));
    EXPECT_TRUE(r->async);
    EXPECT_EQ(r->deadline_ms, 0);
  }
}

TEST(relay_message_format, an_async_request_someone_waits_for_carries_the_reply_address) {
  message m = async_sample({"amq.gen-reply", "corr-7"});
  const auto out = to_outgoing(m, queue_mode::queue);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->properties.reply_to, "amq.gen-reply");
  EXPECT_EQ(out->properties.correlation_id, "corr-7");
  const auto reply = rpc::reply_address_of(as_delivered(*out));
  EXPECT_EQ(reply.reply_to, "amq.gen-reply");
  EXPECT_EQ(reply.correlation_id, "corr-7");
}

TEST(relay_message_format, an_unreadable_async_envelope_is_not_published) {
  message m = async_sample();
  m.payload = R"({"v":2})";
  std::string why;
  EXPECT_FALSE(to_outgoing(m, queue_mode::queue, &why));
  EXPECT_NE(why.find("version"), std::string::npos) << why;

  message other = async_sample();
  other.namespace_ = "elsewhere";
  EXPECT_FALSE(to_outgoing(other, queue_mode::queue, &why))
      << "the exchange follows the message's namespace; an envelope that disagrees is refused";
}

TEST(relay_message_format, publish_targets) {
  message q = sample();
  const auto tq = target_of(q, queue_mode::queue);
  EXPECT_EQ(tq.key, "orders");
  EXPECT_EQ(tq.amqp_name, "sluice.orders");
  EXPECT_EQ(tq.exchange_type, "");
  const auto tb = target_of(q, queue_mode::broadcast);
  EXPECT_EQ(tb.amqp_name, "sluice.orders");
  EXPECT_EQ(tb.exchange_type, "fanout");
  EXPECT_EQ(tb.mode, queue_mode::broadcast);
  const auto ta = target_of(async_sample(), queue_mode::queue);
  EXPECT_EQ(ta.key, "@shop.payments") << "cannot collide with a sluice queue's name";
  EXPECT_EQ(ta.amqp_name, "shop.payments");
  EXPECT_EQ(ta.exchange_type, "headers");
  EXPECT_EQ(ta.mode, queue_mode::broadcast) << "kept by forget_queues after a basic.return";
}

}  // namespace
}  // namespace sluice::relay
