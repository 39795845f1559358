#include "sluice/buffer/replay_reader.hpp"

#include "sluice/buffer/errc.hpp"
#include "sluice/buffer/log_layout.hpp"

#include <spdlog/spdlog.h>

namespace sluice::buffer {

segment_reader* replay_reader::reader_for(std::uint64_t segment, std::error_code& ec) {
  ec.clear();
  if (reader_.is_open() && open_segment_ == segment)
    return &reader_;
  reader_.close();
  ec = reader_.open(dir_ / layout::file_name(segment, layout::segment_suffix));
  if (!ec && reader_.header().id != segment)
    ec = errc::bad_segment_header;
  if (ec) {
    reader_.close();
    return nullptr;
  }
  open_segment_ = segment;
  return &reader_;
}

void replay_reader::forget(std::uint64_t segment) {
  if (reader_.is_open() && open_segment_ == segment)
    reader_.close();
}

void replay_reader::set_aside(unreadable_range& range) {
  const auto path = dir_ / layout::file_name(range.segment, layout::segment_suffix);
  std::error_code save_ec;
  range.quarantined_bytes =
      layout::copy_to_quarantine(dir_, path, range.begin, range.end, "bad", save_ec);
  range.saved = !save_ec;
  spdlog::error(
      "buffer: setting aside corrupt records file={} offset={} end={} records={} error={} "
      "copied_to_quarantine={}",
      path.string(), range.begin, range.end, range.records, range.error.message(),
      save_ec ? "no (" + save_ec.message() + ")" : "yes");
}

replay_chunk replay_reader::read(const std::vector<read_extent>& extents, std::size_t max_records) {
  replay_chunk chunk;
  const auto fail = [&](std::error_code ec, std::uint64_t segment, std::uint64_t offset) {
    // Reopen next time: the descriptor or its buffer may be what failed.
    reader_.close();
    chunk.error = ec;
    spdlog::warn("buffer: read failed, will retry file={} offset={} error={}",
                 (dir_ / layout::file_name(segment, layout::segment_suffix)).string(), offset,
                 ec.message());
  };
  for (const auto& ext : extents) {
    if (ext.begin >= ext.end)
      continue;
    std::error_code ec;
    segment_reader* r = reader_for(ext.segment, ec);
    if (r == nullptr) {
      if (!proves_corruption(ec)) {
        fail(ec, ext.segment, ext.begin);
        return chunk;
      }
      chunk.skipped.push_back({ext.segment, ext.begin, ext.end, ec, 1});
      set_aside(chunk.skipped.back());
      continue;
    }
    r->set_limit(ext.end);
    r->seek(ext.begin);
    for (;;) {
      if (chunk.records.size() >= max_records) {
        chunk.next_created_ms = r->peek_created_ms();
        return chunk;
      }
      record_view rec;
      while (chunk.records.size() < max_records) {
        auto m = r->next_message(rec, ec);
        if (!m)
          break;
        chunk.records.push_back({std::move(*m), {ext.segment, rec.offset}, rec.size});
      }
      if (!ec) {
        if (chunk.records.size() < max_records)
          break;  // the extent is done
        continue;
      }
      const std::uint64_t bad = r->offset();
      if (!proves_corruption(ec)) {
        fail(ec, ext.segment, bad);
        return chunk;
      }
      std::optional<std::uint64_t> next;
      std::error_code scan_ec;
      if (!r->find_next_record(bad, next, scan_ec)) {
        fail(scan_ec, ext.segment, bad);
        return chunk;
      }
      const std::uint64_t end = next.value_or(ext.end);
      chunk.skipped.push_back({ext.segment, bad, end, ec, r->count_frames(bad, end)});
      set_aside(chunk.skipped.back());
      if (!next)
        break;
      r->seek(*next);
    }
  }
  return chunk;
}

}  // namespace sluice::buffer
