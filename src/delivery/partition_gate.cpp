#include "sluice/delivery/partition_gate.hpp"

namespace sluice::delivery {

partition_gate::partition_gate(std::set<std::string> blocked) : blocked_(std::move(blocked)) {}

partition_gate::step partition_gate::step_for(const std::string& partition, bool released) const {
  return released || !blocked_.contains(partition) ? step::deliver : step::park_behind;
}

std::optional<partition_gate::step> partition_gate::arrive(const std::string& partition, ticket t,
                                                           bool released) {
  const auto it = lines_.find(partition);
  if (it != lines_.end()) {
    it->second.push_back({t, released});
    ++stats_.queued;
    return std::nullopt;
  }
  lines_.emplace(partition, std::deque<waiting_ticket>{});
  return step_for(partition, released);
}

partition_gate::after_finish partition_gate::finish(const std::string& partition, result r) {
  after_finish out;
  const auto it = lines_.find(partition);
  if (it == lines_.end())
    return out;  // not busy: a finish without a start is ignored
  switch (r) {
    case result::done:
      break;
    case result::released_none:
      if (blocked_.erase(partition))
        ++stats_.unblocked;
      break;
    case result::parked:
      if (blocked_.insert(partition).second)
        ++stats_.blocked;
      break;
    case result::abandoned:
      for (const auto& w : it->second)
        out.abandon.push_back(w.t);
      stats_.abandoned += it->second.size();
      lines_.erase(it);
      return out;
  }
  auto& line = it->second;
  if (line.empty()) {
    lines_.erase(it);
    return out;
  }
  const waiting_ticket w = line.front();
  line.pop_front();
  out.next = start{w.t, step_for(partition, w.released)};
  return out;
}

std::size_t partition_gate::waiting(const std::string& partition) const {
  const auto it = lines_.find(partition);
  return it == lines_.end() ? 0 : it->second.size();
}

}  // namespace sluice::delivery
