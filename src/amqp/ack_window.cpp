#include "sluice/amqp/ack_window.hpp"

#include <algorithm>

namespace sluice::amqp {

void ack_window::delivered(std::uint64_t delivery_tag) {
  if (!entries_.empty() && entries_.back().tag >= delivery_tag) {
    // Not possible on one channel; if a broker did it, lookups would go wrong, so start over
    // with direct acks for the older tags (they are no longer found).
    entries_.clear();
    acks_ = 0;
  }
  entries_.push_back(entry{delivery_tag, state::open});
}

ack_window::entry* ack_window::find(std::uint64_t delivery_tag) {
  const auto it = std::lower_bound(entries_.begin(), entries_.end(), delivery_tag,
                                   [](const entry& e, std::uint64_t tag) { return e.tag < tag; });
  if (it == entries_.end() || it->tag != delivery_tag) {
    return nullptr;
  }
  return &*it;
}

bool ack_window::ack(std::uint64_t delivery_tag) {
  entry* e = find(delivery_tag);
  if (e == nullptr || e->s != state::open) {
    return false;
  }
  e->s = state::ack_recorded;
  ++acks_;
  return true;
}

void ack_window::settled(std::uint64_t delivery_tag) {
  entry* e = find(delivery_tag);
  if (e == nullptr) {
    return;
  }
  if (e->s == state::ack_recorded) {
    --acks_;
  }
  e->s = state::settled;
}

std::vector<ack_window::ack_frame> ack_window::take() {
  std::vector<ack_frame> frames;
  if (acks_ == 0) {
    return frames;
  }
  // The leading run of settled tags goes as one frame, naming its last recorded ack.
  std::uint64_t last_ack = 0;
  std::size_t run = 0;
  std::size_t run_to_last_ack = 0;
  while (!entries_.empty() && entries_.front().s != state::open) {
    ++run;
    if (entries_.front().s == state::ack_recorded) {
      last_ack = entries_.front().tag;
      run_to_last_ack = run;
      --acks_;
    }
    entries_.pop_front();
  }
  if (run_to_last_ack > 0) {
    frames.push_back(ack_frame{last_ack, run_to_last_ack > 1});
  }
  // Whatever waits behind a tag still being worked on leaves one by one.
  for (auto it = entries_.begin(); acks_ > 0 && it != entries_.end(); ++it) {
    if (it->s == state::ack_recorded) {
      frames.push_back(ack_frame{it->tag, false});
      it->s = state::settled;
      --acks_;
    }
  }
  return frames;
}

void ack_window::clear() {
  entries_.clear();
  acks_ = 0;
}

}  // namespace sluice::amqp
