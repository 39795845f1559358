#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"

namespace sluice::push {

// (queue, transactionId) → id of the messages that sit in the file buffer and are not yet in
// PostgreSQL. PostgreSQL's unique index answers duplicates for stored messages; this answers
// them for buffered ones, so a retried push is a `duplicate` even before the replay. Bounded by
// the buffer's size bound, since every entry is a record on disk.
class pending_index {
 public:
  std::optional<uuid> find(std::string_view queue, std::string_view transaction_id) const;
  void add(const message& m);     // no-op without a transactionId
  void remove(const message& m);  // only if the entry is this message's
  std::size_t size() const { return ids_.size(); }

 private:
  static std::string key(std::string_view queue, std::string_view transaction_id);
  std::unordered_map<std::string, uuid> ids_;
};

}  // namespace sluice::push
