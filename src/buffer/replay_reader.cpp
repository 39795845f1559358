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

replay_chunk replay_reader::read(const std::vector<read_extent>& extents, std::size_t max_records) {
  replay_chunk chunk;
  for (const auto& ext : extents) {
    if (ext.begin >= ext.end)
      continue;
    std::error_code ec;
    segment_reader* r = reader_for(ext.segment, ec);
    if (r != nullptr) {
      r->set_limit(ext.end);
      r->seek(ext.begin);
      if (chunk.records.size() >= max_records) {
        chunk.next_created_ms = r->peek_created_ms();
        return chunk;
      }
      record_view rec;
      while (chunk.records.size() < max_records && r->next(rec, ec)) {
        std::optional<message> m;
        if (rec.kind == record_kind::message)
          m = decode_message_body(rec.body, ec);
        if (!m) {
          if (!ec)
            ec = errc::malformed_record;
          r->seek(rec.offset);
          break;
        }
        chunk.records.push_back({std::move(*m), {ext.segment, rec.offset}, rec.size});
      }
      if (!ec && chunk.records.size() >= max_records) {
        chunk.next_created_ms = r->peek_created_ms();
        return chunk;
      }
    }
    if (ec) {
      const std::uint64_t bad = r != nullptr ? r->offset() : ext.begin;
      spdlog::error("buffer: skipping unreadable records file={} offset={} end={} error={}",
                    (dir_ / layout::file_name(ext.segment, layout::segment_suffix)).string(), bad,
                    ext.end, ec.message());
      chunk.skipped.push_back({ext.segment, bad, ext.end, ec});
    }
  }
  return chunk;
}

}  // namespace sluice::buffer
