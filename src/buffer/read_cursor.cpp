#include "sluice/buffer/read_cursor.hpp"

#include <algorithm>

namespace sluice::buffer::detail {

void read_cursor::reset(const record_position& ack, std::optional<std::int64_t> head_created_ms) {
  inflight_.clear();
  ack_ = read_ = ack;
  unread_head_ = head_created_ms;
}

void read_cursor::handed_out(const buffered_record& r) {
  inflight_.push_back({r.position, r.position.offset + r.size, r.size, r.msg.created_ms});
  read_ = {r.position.segment, r.position.offset + r.size};
}

std::size_t read_cursor::inflight_through(const record_position& last) const {
  const auto it = std::lower_bound(
      inflight_.begin(), inflight_.end(), last,
      [](const inflight_record& e, const record_position& p) { return e.pos < p; });
  if (it == inflight_.end() || it->pos != last)
    return 0;
  return static_cast<std::size_t>(it - inflight_.begin()) + 1;
}

void read_cursor::ack_at_least(const record_position& pos) {
  ack_ = std::max(ack_, pos);
}

void read_cursor::rewind() {
  if (!inflight_.empty())
    unread_head_ = inflight_.front().created_ms;
  inflight_.clear();
  read_ = ack_;
}

std::optional<std::int64_t> read_cursor::oldest_created_ms() const {
  if (!inflight_.empty())
    return inflight_.front().created_ms;
  return unread_head_;
}

}  // namespace sluice::buffer::detail
