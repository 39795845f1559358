#include "sluice/relay/message_format.hpp"

namespace sluice::relay {

std::string amqp_name(std::string_view queue) {
  std::string name;
  name.reserve(7 + queue.size());
  name += "sluice.";
  name += queue;
  return name;
}

amqp::outgoing_message to_outgoing(message& m, queue_mode mode) {
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
