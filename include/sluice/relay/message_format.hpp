#pragma once

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
// Moves the payload out of `m`.
amqp::outgoing_message to_outgoing(message& m, queue_mode mode);

}  // namespace sluice::relay
