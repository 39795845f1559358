#include "sluice/relay/pending_queue.hpp"

namespace sluice::relay {

namespace {
std::size_t optional_size(const std::optional<std::string>& s) {
  return s ? s->size() : 0;
}
}  // namespace

pending_queue::pending_queue(std::size_t max_items, std::size_t max_bytes)
    : max_items_(max_items), max_bytes_(max_bytes) {}

std::size_t pending_queue::cost(const message& m) {
  return sizeof(entry) + m.payload.size() + m.queue.size() + m.partition.size() +
         optional_size(m.namespace_) + optional_size(m.task) + optional_size(m.trace_id) +
         optional_size(m.transaction_id);
}

bool pending_queue::push(std::vector<message>& batch, clock::time_point now) {
  std::size_t add = 0;
  for (const auto& m : batch)
    add += cost(m);
  if (entries_.size() + batch.size() > max_items_ || bytes_ + add > max_bytes_)
    return false;
  for (auto& m : batch)
    entries_.push_back(entry{std::move(m), now});
  bytes_ += add;
  return true;
}

pending_queue::entry pending_queue::pop() {
  entry e = std::move(entries_.front());
  entries_.pop_front();
  bytes_ -= cost(e.msg);
  return e;
}

std::size_t pending_queue::drop_enqueued_before(clock::time_point cutoff) {
  std::size_t n = 0;
  while (!entries_.empty() && entries_.front().enqueued < cutoff) {
    pop();
    ++n;
  }
  return n;
}

}  // namespace sluice::relay
