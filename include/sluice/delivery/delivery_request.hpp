#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/amqp/delivery.hpp"
#include "sluice/delivery/parked_message.hpp"
#include "sluice/delivery/subscription.hpp"
#include "sluice/http/client.hpp"

namespace sluice::delivery {

// A RabbitMQ delivery of a subscription's queue, read back into the message the relay (or the
// retry scheduler) published: relay/message_format.hpp is the contract of the first publish,
// parked_message.hpp the headers a retry adds.
struct incoming_message {
  parked_message message;  // message.attempt: the attempt this delivery is (x-sluice-attempt, 1)
  bool released = false;   // x-sluice-released: an ordered partition's head coming back
  std::string trace_id;    // the traceId header, "" when absent
};

// nullopt (and `why`) for a delivery that cannot be a sluice message: no message id, or one
// that is not a uuid. Headers that are not strings are left out of message.headers.
std::optional<incoming_message> decode_delivery(const amqp::delivery& d, std::string_view queue,
                                                std::string_view subscription, std::string* why);

// The traceparent header for a message's traceId: a full W3C traceparent
// (00-<32 hex>-<16 hex>-<2 hex>, lower case) is passed on as it is, 32 hex digits (any case)
// become
// 00-<traceId in lower case>-<16 random hex digits>-01 (a new span of that trace, sampled),
// anything else (or all zeros) gives none.
std::optional<std::string> traceparent_for(std::string_view trace_id, std::uint64_t random);

// What signs a subscription's deliveries: its secrets decoded once (webhook_signature.hpp).
struct signing_keys {
  std::vector<std::string> keys;  // empty: unsigned
};
// Secrets that do not decode are skipped (the API refuses them; a row edited by hand is logged
// by the caller through `bad`).
signing_keys signing_keys_of(const subscription& s, std::size_t* bad = nullptr);

// The HTTP request of one delivery (README "Delivery"): the payload as pushed, headers in this
// order: Content-Type: application/json, Idempotency-Key, X-Sluice-Queue, X-Sluice-Partition,
// X-Sluice-Attempt, traceparent (traceparent_for), the subscription's own headers (one whose
// name is one of those above, or a webhook-* name, is left out: sluice's win), and with keys
// webhook-id (the message id), webhook-timestamp (`unix_seconds`), webhook-signature.
// `to`: where it goes when not to s.address (the url of the subscription's route).
http::client_request compose_delivery(const subscription& s, const signing_keys& keys,
                                      const incoming_message& m, std::int64_t unix_seconds,
                                      std::uint64_t random, const target_address* to = nullptr);

// The request of one batch (batch_protocol.hpp's body, to the batch url): Content-Type,
// X-Sluice-Queue, X-Sluice-Batch-Size, the subscription's headers, and with keys the Standard
// Webhooks headers with `batch_id` as webhook-id. `to`: where it goes when not to the batch url
// (the url of the subscription's route).
http::client_request compose_batch(const subscription& s, const signing_keys& keys,
                                   std::string body, std::size_t items, std::string_view batch_id,
                                   std::int64_t unix_seconds, const target_address* to = nullptr);

}  // namespace sluice::delivery
