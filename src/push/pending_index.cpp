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

std::optional<pending_entry> pending_index::find(std::string_view queue,
                                                 std::string_view transaction_id) const {
  const auto it = ids_.find(key(queue, transaction_id));
  if (it == ids_.end())
    return std::nullopt;
  return it->second;
}

bool pending_index::add(const message& m, pending_log log, pending_state state) {
  if (!m.transaction_id)
    return false;
  expire_recent();
  return ids_.try_emplace(key(m.queue, *m.transaction_id), pending_entry{m.id, log, state}).second;
}

void pending_index::committed(const message& m, const uuid& stored_id) {
  if (!m.transaction_id)
    return;
  auto k = key(m.queue, *m.transaction_id);
  const auto it = ids_.find(k);
  if (it == ids_.end() || it->second.id != m.id)
    return;
  if (it->second.state == pending_state::stored)
    return;
  it->second = pending_entry{stored_id, pending_log::db, pending_state::stored};
  recent_.push_back({clock::now(), std::move(k), stored_id});
  settled_.notify_all();
  expire_recent();
}

void pending_index::expire_recent() {
  const auto horizon = clock::now() - recent_ttl_;
  while (!recent_.empty() && (recent_.size() > max_recent_ || recent_.front().at < horizon)) {
    const auto it = ids_.find(recent_.front().key);
    if (it != ids_.end() && it->second.state == pending_state::stored &&
        it->second.id == recent_.front().id)
      ids_.erase(it);
    recent_.pop_front();
  }
}

void pending_index::move_to(const message& m, pending_log log) {
  if (!m.transaction_id)
    return;
  const auto it = ids_.find(key(m.queue, *m.transaction_id));
  if (it != ids_.end() && it->second.id == m.id)
    it->second.log = log;
}

void pending_index::mark_written(const message& m) {
  if (!m.transaction_id)
    return;
  const auto it = ids_.find(key(m.queue, *m.transaction_id));
  if (it != ids_.end() && it->second.id == m.id && it->second.state == pending_state::writing) {
    it->second.state = pending_state::written;
    settled_.notify_all();
  }
}

void pending_index::remove(const message& m) {
  if (!m.transaction_id)
    return;
  const auto it = ids_.find(key(m.queue, *m.transaction_id));
  if (it != ids_.end() && it->second.id == m.id) {
    ids_.erase(it);
    settled_.notify_all();
  }
}

void pending_index::begin_verify(pending_log log) {
  for (auto& [k, e] : ids_) {
    if (e.log == log && e.state == pending_state::written)
      e.state = pending_state::verifying;
  }
}

void pending_index::verified(const message& m) {
  if (!m.transaction_id)
    return;
  const auto it = ids_.find(key(m.queue, *m.transaction_id));
  if (it != ids_.end() && it->second.id == m.id && it->second.state == pending_state::verifying) {
    it->second.state = pending_state::written;
    settled_.notify_all();
  }
}

void pending_index::end_verify(pending_log log, bool read_through) {
  for (auto it = ids_.begin(); it != ids_.end();) {
    if (it->second.log == log && it->second.state == pending_state::verifying) {
      if (read_through) {
        it = ids_.erase(it);
        continue;
      }
      it->second.state = pending_state::written;
    }
    ++it;
  }
  settled_.notify_all();
}

}  // namespace sluice::push
