#include "sluice/push/pending_index.hpp"

namespace sluice::push {

std::string pending_index::key(std::string_view queue, std::string_view transaction_id) {
  // Queue names cannot contain '\n' (validated), so the key is unambiguous.
  std::string k;
  k.reserve(queue.size() + transaction_id.size() + 1);
  k.append(queue).push_back('\n');
  k.append(transaction_id);
  return k;
}

std::optional<uuid> pending_index::find(std::string_view queue,
                                        std::string_view transaction_id) const {
  const auto it = ids_.find(key(queue, transaction_id));
  if (it == ids_.end())
    return std::nullopt;
  return it->second;
}

void pending_index::add(const message& m) {
  if (m.transaction_id)
    ids_.try_emplace(key(m.queue, *m.transaction_id), m.id);
}

void pending_index::remove(const message& m) {
  if (!m.transaction_id)
    return;
  const auto it = ids_.find(key(m.queue, *m.transaction_id));
  if (it != ids_.end() && it->second == m.id)
    ids_.erase(it);
}

}  // namespace sluice::push
