#pragma once

// Replay's two cursors over a log: the read cursor (how far read_batch has handed records out)
// and the ack cursor (how far they were acknowledged), with the records in between that are in
// flight to PostgreSQL. Owned by log_core (buffer_log.cpp) and used on the loop only; storing
// the ack cursor on disk is ack_store's job.

#include <cstdint>
#include <deque>
#include <optional>

#include "sluice/buffer/record_position.hpp"

namespace sluice::buffer::detail {

struct inflight_record {
  record_position pos;
  std::uint64_t end = 0;
  std::uint32_t bytes = 0;
  std::int64_t created_ms = 0;
};

class read_cursor {
 public:
  // Both cursors at `ack` (recovery's), nothing in flight.
  void reset(const record_position& ack, std::optional<std::int64_t> head_created_ms);

  const record_position& ack() const { return ack_; }
  const record_position& read() const { return read_; }
  std::uint64_t inflight_records() const { return inflight_.size(); }

  // read_batch handed `r` out: the read cursor moves past it.
  void handed_out(const buffered_record& r);

  // Takes every record up to and including `last` out of flight, oldest first, calling
  // `on_acked(const inflight_record&)` for each, and moves the ack cursor past them. False when
  // `last` is not in flight. The caller checks for positions already acknowledged first.
  template <typename OnAcked>
  bool acknowledge(const record_position& last, OnAcked&& on_acked) {
    const std::size_t count = inflight_through(last);
    if (count == 0)
      return false;
    for (std::size_t i = 0; i < count; ++i) {
      const inflight_record e = inflight_.front();
      inflight_.pop_front();
      on_acked(e);
      ack_ = {e.pos.segment, e.end};
    }
    return true;
  }

  // The ack cursor moves to at least `pos` (a drained segment's end).
  void ack_at_least(const record_position& pos);

  // Everything in flight is unread again: the read cursor goes back to the ack cursor.
  void rewind();

  // created_ms of the first record after the read cursor, when known.
  const std::optional<std::int64_t>& unread_head_created_ms() const { return unread_head_; }
  void set_unread_head_created_ms(std::optional<std::int64_t> created_ms) {
    unread_head_ = created_ms;
  }

  // created_ms of the oldest record not acknowledged, when this cursor knows it.
  std::optional<std::int64_t> oldest_created_ms() const;

 private:
  // How many in-flight records end with `last`; 0 if none is at `last`.
  std::size_t inflight_through(const record_position& last) const;

  std::deque<inflight_record> inflight_;  // by position
  record_position ack_;
  record_position read_;
  std::optional<std::int64_t> unread_head_;
};

}  // namespace sluice::buffer::detail
