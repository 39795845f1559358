#pragma once

// Which segments of a log exist, how far each is written and acknowledged, the corrupt ranges
// (holes) replay skips in it, and the log's pending and on-disk totals derived from them.
// Owned by log_core (buffer_log.cpp) and used on the loop only: the writer's reports, replay's
// skipped ranges and acknowledgements reach it there. It does no I/O; deleting a drained
// segment's file is the owner's job.

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "sluice/buffer/log_recovery.hpp"
#include "sluice/buffer/log_writer.hpp"
#include "sluice/buffer/record_position.hpp"
#include "sluice/buffer/replay_reader.hpp"

namespace sluice::buffer::detail {

struct segment_state {
  std::uint64_t id = 0;
  std::uint64_t end = 0;
  std::uint64_t records = 0;
  std::uint64_t record_bytes = 0;
  std::uint64_t acked_records = 0;
  std::uint64_t acked_bytes = 0;
  std::optional<std::int64_t> first_created_ms;
  // Corrupt ranges (by offset, disjoint) that reads skip. Records counted in `records` that
  // replay found inside one are `lost`: never acknowledged, no longer pending.
  std::vector<byte_range> holes;
  std::uint64_t lost_records = 0;
  std::uint64_t lost_bytes = 0;
  bool sealed = false;
  bool unreadable = false;  // a corrupt range could not be copied: quarantine, not delete
};

class segment_set {
 public:
  // Recovered segments are sealed: the writer starts a new one.
  void add_recovered(const recovered_segment& r);

  segment_state* find(std::uint64_t id);

  // Opens the segment on its first append. False (logged) when the append does not belong to a
  // known segment, and then nothing is counted.
  bool apply_append(const append_result& res);

  // One record read from `segment` was acknowledged.
  void acknowledge(std::uint64_t segment, std::uint32_t bytes);

  // Replay set `range` aside: its records are no longer pending.
  void add_hole(const unreadable_range& range);

  // Committed bytes at or after `from`, without the holes, in log order.
  std::vector<read_extent> extents_after(const record_position& from) const;

  // The oldest segment, if its readable records all lie before `ack`.
  const segment_state* drained_front(const record_position& ack) const;
  // Forgets the oldest segment with whatever it still counted as pending.
  segment_state pop_front();

  // created_ms of the first record of the oldest segment with unacknowledged records.
  std::optional<std::int64_t> first_unacked_created_ms() const;

  std::uint64_t pending_records() const { return pending_records_; }
  std::uint64_t pending_bytes() const { return pending_bytes_; }
  std::uint64_t disk_bytes() const { return disk_bytes_; }
  std::size_t size() const { return segments_.size(); }

 private:
  std::deque<segment_state> segments_;  // by id
  std::uint64_t pending_records_ = 0;
  std::uint64_t pending_bytes_ = 0;
  std::uint64_t disk_bytes_ = 0;
};

}  // namespace sluice::buffer::detail
