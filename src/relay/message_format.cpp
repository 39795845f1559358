#include "sluice/relay/message_format.hpp"

#include "sluice/rpc/async_envelope.hpp"

namespace sluice::relay {

namespace {

// Messages without a namespace were not written by the requests module; "default" is what a
// service without one gets.
std::string exchange_of_async(const message& m) {
  return rpc::async_exchange(m.namespace_.value_or("default"),
                             rpc::service_of_async_queue(m.queue));
}

std::optional<amqp::outgoing_message> async_to_outgoing(message& m, std::string* why) {
  std::string reason;
  auto envelope = rpc::decode_async_envelope(m.payload, &reason);
  if (envelope && (envelope->request.service != rpc::service_of_async_queue(m.queue) ||
                   envelope->namespace_ != m.namespace_.value_or("default"))) {
    envelope.reset();
    reason = "the envelope's service or namespace differs from the message's";
  }
  if (!envelope) {
    if (why)
      *why = "async request envelope: " + reason;
    return std::nullopt;
  }
  rpc::rpc_request& r = envelope->request;
  r.id = m.id.to_string();
  r.async = true;
  r.deadline_ms = 0;
  auto out = rpc::encode_request(r, exchange_of_async(m), envelope->reply, 0);
  out.mandatory = true;
  out.properties.timestamp = static_cast<std::uint64_t>(m.created_ms < 0 ? 0 : m.created_ms / 1000);
  m.payload.clear();
  return out;
}

}  // namespace

std::string amqp_name(std::string_view queue) {
  std::string name;
  name.reserve(7 + queue.size());
  name += "sluice.";
  name += queue;
  return name;
}

publish_target target_of(const message& m, queue_mode mode) {
  if (rpc::is_async_queue(m.queue)) {
    std::string exchange = exchange_of_async(m);
    return {"@" + exchange, queue_mode::broadcast, exchange, "headers"};
  }
  return {m.queue, mode, amqp_name(m.queue), mode == queue_mode::queue ? "" : "fanout"};
}

std::optional<amqp::outgoing_message> to_outgoing(message& m, queue_mode mode, std::string* why) {
  if (rpc::is_async_queue(m.queue))
    return async_to_outgoing(m, why);
  amqp::outgoing_message out;
  if (mode == queue_mode::queue) {
    out.routing_key = amqp_name(m.queue);
    out.mandatory = true;
  } else {
    out.exchange = amqp_name(m.queue);
  }
  auto& p = out.properties;
  p.message_id = m.id.to_string();
  p.content_type = "application/json";
  p.delivery_mode = amqp::delivery_mode_persistent;
  p.timestamp = static_cast<std::uint64_t>(m.created_ms < 0 ? 0 : m.created_ms / 1000);
  amqp::field_table headers;
  headers.set("queue", m.queue);
  headers.set("partition", m.partition);
  if (m.transaction_id) {
    headers.set("transactionId", *m.transaction_id);
    // correlation_id is an AMQP short string: 255 bytes at most, and a transactionId may have
    // 256. Such a one is in the header only.
    if (m.transaction_id->size() <= amqp::max_short_string_bytes)
      p.correlation_id = *m.transaction_id;
  }
  if (m.namespace_)
    headers.set("namespace", *m.namespace_);
  if (m.task)
    headers.set("task", *m.task);
  if (m.trace_id)
    headers.set("traceId", *m.trace_id);
  p.headers = std::move(headers);
  out.body = std::move(m.payload);
  return out;
}

}  // namespace sluice::relay
