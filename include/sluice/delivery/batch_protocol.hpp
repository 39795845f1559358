#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::delivery {

// One message of a batch delivery.
struct batch_item {
  std::string id;  // the message id (its Idempotency-Key when delivered alone)
  std::string partition;
  std::uint32_t attempt = 1;
  const std::string* payload = nullptr;  // the bytes as pushed (JSON text)
};

// The body POSTed to a subscription's batch url, a JSON array in delivery order:
//   [{"id":"<message id>","queue":"<queue>","partition":"<p>","attempt":1,"payload":<as pushed>}]
// The payload is embedded as the JSON text it is (never re-serialized).
std::string encode_batch(std::string_view queue, const std::vector<batch_item>& items);

// What a 2xx answer to a batch says of each item, in the items' order. The body must be a JSON
// array of exactly one entry per item, either all numbers (statuses in item order) or all
// objects {"id":"<message id>","status":<100..599>} in any order. nullopt, with the reason in
// `why`, for anything else (not JSON, another length, an id missing, unknown or repeated, a
// status out of range): then every item of the batch is retried on its own.
std::optional<std::vector<int>> parse_batch_response(std::string_view body,
                                                     const std::vector<std::string>& ids,
                                                     std::string* why);

}  // namespace sluice::delivery
