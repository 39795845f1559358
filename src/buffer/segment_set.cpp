#include "sluice/buffer/segment_set.hpp"

#include <algorithm>

#include "sluice/buffer/record_format.hpp"

#include <spdlog/spdlog.h>

namespace sluice::buffer::detail {
namespace {

// Where the readable bytes of `s` begin and end, holes at either edge excluded.
std::uint64_t readable_begin(const segment_state& s) {
  std::uint64_t begin = segment_header_size;
  for (const auto& h : s.holes) {
    if (h.begin <= begin)
      begin = std::max(begin, h.end);
  }
  return begin;
}

std::uint64_t readable_end(const segment_state& s) {
  std::uint64_t end = s.end;
  for (auto h = s.holes.rbegin(); h != s.holes.rend(); ++h) {
    if (h->end >= end)
      end = std::min(end, h->begin);
  }
  return end;
}

}  // namespace

void segment_set::add_recovered(const recovered_segment& r) {
  segment_state s;
  s.id = r.id;
  s.end = r.end;
  s.records = r.records;
  s.record_bytes = r.record_bytes;
  s.acked_records = r.acked_records;
  s.acked_bytes = r.acked_bytes;
  s.first_created_ms = r.first_created_ms;
  s.holes = r.holes;
  s.sealed = true;
  pending_records_ += r.records - r.acked_records;
  pending_bytes_ += r.record_bytes - r.acked_bytes;
  disk_bytes_ += r.end;
  segments_.push_back(s);
}

segment_state* segment_set::find(std::uint64_t id) {
  const auto it =
      std::lower_bound(segments_.begin(), segments_.end(), id,
                       [](const segment_state& s, std::uint64_t v) { return s.id < v; });
  return it != segments_.end() && it->id == id ? &*it : nullptr;
}

bool segment_set::apply_append(const append_result& res) {
  if (segments_.empty() || segments_.back().id < res.segment) {
    segment_state s;
    s.id = res.segment;
    s.end = segment_header_size;
    disk_bytes_ += segment_header_size;
    segments_.push_back(s);
  }
  segment_state* s = find(res.segment);
  if (s == nullptr || s->end != res.begin) {
    spdlog::error("buffer: append out of order segment={} begin={}", res.segment, res.begin);
    if (s == nullptr)
      return false;
  }
  s->end = res.end;
  s->records += res.records;
  s->record_bytes += res.end - res.begin;
  if (!s->first_created_ms)
    s->first_created_ms = res.first_created_ms;
  disk_bytes_ += res.end - res.begin;
  pending_records_ += res.records;
  pending_bytes_ += res.end - res.begin;
  return true;
}

void segment_set::acknowledge(std::uint64_t segment, std::uint32_t bytes) {
  if (segment_state* s = find(segment)) {
    ++s->acked_records;
    s->acked_bytes += bytes;
  }
  --pending_records_;
  pending_bytes_ -= bytes;
}

void segment_set::add_hole(const unreadable_range& range) {
  segment_state* s = find(range.segment);
  if (s == nullptr)
    return;
  if (!range.saved)
    s->unreadable = true;
  const auto at =
      std::lower_bound(s->holes.begin(), s->holes.end(), range.begin,
                       [](const byte_range& h, std::uint64_t v) { return h.begin < v; });
  s->holes.insert(at, {range.begin, range.end});
  const std::uint64_t records =
      std::min(range.records, s->records - s->acked_records - s->lost_records);
  const std::uint64_t bytes =
      std::min(range.end - range.begin, s->record_bytes - s->acked_bytes - s->lost_bytes);
  s->lost_records += records;
  s->lost_bytes += bytes;
  pending_records_ -= records;
  pending_bytes_ -= bytes;
}

std::vector<read_extent> segment_set::extents_after(const record_position& from) const {
  std::vector<read_extent> extents;
  for (const auto& s : segments_) {
    if (s.id < from.segment)
      continue;
    std::uint64_t begin = s.id == from.segment
                              ? std::max<std::uint64_t>(from.offset, segment_header_size)
                              : segment_header_size;
    for (const auto& h : s.holes) {
      if (h.end <= begin)
        continue;
      if (h.begin > begin)
        extents.push_back({s.id, begin, std::min(h.begin, s.end)});
      begin = std::max(begin, h.end);
    }
    if (begin < s.end)
      extents.push_back({s.id, begin, s.end});
  }
  return extents;
}

const segment_state* segment_set::drained_front(const record_position& ack) const {
  if (segments_.empty())
    return nullptr;
  const segment_state& s = segments_.front();
  const std::uint64_t readable = readable_end(s);
  const bool acked = ack.segment > s.id || (ack.segment == s.id && ack.offset >= readable) ||
                     readable_begin(s) >= readable;
  return acked ? &s : nullptr;
}

segment_state segment_set::pop_front() {
  segment_state s = std::move(segments_.front());
  segments_.pop_front();
  pending_records_ -= s.records - s.acked_records - s.lost_records;
  pending_bytes_ -= s.record_bytes - s.acked_bytes - s.lost_bytes;
  disk_bytes_ -= s.end;
  return s;
}

std::optional<std::int64_t> segment_set::first_unacked_created_ms() const {
  for (const auto& s : segments_) {
    if (s.records > s.acked_records)
      return s.first_created_ms;
  }
  return std::nullopt;
}

}  // namespace sluice::buffer::detail
