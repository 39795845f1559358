#include "sluice/amqp/ack_window.hpp"

#include <algorithm>

namespace sluice::amqp {

void ack_window::delivered(std::uint64_t delivery_tag) {
  if (!coalescing_) {
    return;
  }
  if (!entries_.empty() && entries_.back().tag >= delivery_tag) {
    // Not possible on one channel. If a broker did it, the window could no longer tell which
    // tags are outstanding (a multiple ack might cover one nobody handled), so this channel
    // acks directly from now on; the acks recorded so far still leave at the next take().
    coalescing_ = false;
    return;
  }
  entries_.push_back(entry{delivery_tag, state::open});
}

std::deque<ack_window::entry>::iterator ack_window::find(std::uint64_t delivery_tag) {
  const auto it = std::lower_bound(entries_.begin(), entries_.end(), delivery_tag,
                                   [](const entry& e, std::uint64_t tag) { return e.tag < tag; });
  if (it == entries_.end() || it->tag != delivery_tag) {
    return entries_.end();
  }
  return it;
}

bool ack_window::ack(std::uint64_t delivery_tag) {
  if (!coalescing_) {
    return false;
  }
  const auto it = find(delivery_tag);
  if (it == entries_.end() || it->s != state::open) {
    return false;
  }
  it->s = state::ack_recorded;
  ++acks_;
  return true;
}

void ack_window::settled(std::uint64_t delivery_tag) {
  const auto it = find(delivery_tag);
  if (it == entries_.end()) {
    return;
  }
  if (it->s == state::ack_recorded) {
    --acks_;
  }
  // Typically the newest or the oldest tag: the deque moves the shorter side.
  entries_.erase(it);
}

void ack_window::settled_through(std::uint64_t delivery_tag) {
  while (!entries_.empty() && entries_.front().tag <= delivery_tag) {
    if (entries_.front().s == state::ack_recorded) {
      --acks_;
    }
    entries_.pop_front();
  }
}

std::vector<ack_window::ack_frame> ack_window::take() {
  std::vector<ack_frame> frames;
  if (acks_ == 0) {
    return frames;
  }
  if (!coalescing_) {
    for (const auto& e : entries_) {
      if (e.s == state::ack_recorded) {
        frames.push_back(ack_frame{e.tag, false});
      }
    }
    entries_.clear();
    acks_ = 0;
    return frames;
  }
  // The leading run of recorded acks goes as one frame naming its last tag: every other tag
  // the broker still counts up to it is in the run.
  std::uint64_t last_ack = 0;
  std::size_t run = 0;
  while (!entries_.empty() && entries_.front().s == state::ack_recorded) {
    last_ack = entries_.front().tag;
    ++run;
    --acks_;
    entries_.pop_front();
  }
  if (run > 0) {
    frames.push_back(ack_frame{last_ack, run > 1});
  }
  // Whatever waits behind a tag still being worked on leaves one by one.
  if (acks_ > 0) {
    for (const auto& e : entries_) {
      if (e.s == state::ack_recorded) {
        frames.push_back(ack_frame{e.tag, false});
      }
    }
    std::erase_if(entries_, [](const entry& e) { return e.s == state::ack_recorded; });
    acks_ = 0;
  }
  return frames;
}

void ack_window::clear() {
  entries_.clear();
  acks_ = 0;
}

}  // namespace sluice::amqp
