#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sluice/amqp/publisher.hpp"
#include "sluice/core/message.hpp"
#include "sluice/relay/queue_mode.hpp"

namespace sluice::relay {

// The RabbitMQ name of sluice queue `queue`: the queue (queue mode) or the fanout exchange
// (broadcast mode) its messages go to. The prefix keeps sluice's objects apart from others on
// the same vhost.
std::string amqp_name(std::string_view queue);

// What must exist on the broker before a message can be published, and what the declare cache
// knows it by.
struct publish_target {
  std::string key;  // the sluice queue; "@<exchange>" for an async request's exchange
  queue_mode mode;  // selects the cache's set: queues (queue) or exchanges (the others)
  std::string amqp_name;
  std::string exchange_type;  // empty: a queue; else "fanout" or "headers"
};
publish_target target_of(const message& m, queue_mode mode);

// A committed message as a persistent AMQP message (the contract consumers rely on; the README
// documents it):
//   queue mode:     default exchange "", routing key sluice.<queue>, mandatory (an unroutable
//                   message comes back as basic.return, so the row stays unpublished)
//   broadcast mode: exchange sluice.<queue>, routing key "", not mandatory (no subscriber
//                   bound means nobody to deliver to, which is not an error)
//   properties:     message_id = id (uuid text), content_type application/json,
//                   delivery_mode 2, timestamp = created_ms / 1000,
//                   correlation_id = transactionId when present and at most 255 bytes
//   headers:        queue, partition; namespace, task, traceId, transactionId when present
//                   (all strings)
//   body:           the payload bytes exactly as pushed
// A message of an async queue (rpc/async_envelope.hpp) is published as the request it carries
// instead: rpc::encode_request to the headers exchange <namespace>.<service>, persistent, no
// expiration, mandatory (no flavour queue bound yet: returned, and the row stays unpublished
// for the sweeper), message_id = the message id, reply_to/correlation_id from the envelope.
// Its queue mode is ignored. nullopt (and `why`) only for an async message whose envelope
// cannot be read.
// Moves the payload out of `m`.
std::optional<amqp::outgoing_message> to_outgoing(message& m, queue_mode mode,
                                                  std::string* why = nullptr);

}  // namespace sluice::relay
