#include "sluice/buffer/log_recovery.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <string>
#include <unistd.h>

#include "sluice/buffer/ack_cursor.hpp"
#include "sluice/buffer/errc.hpp"
#include "sluice/buffer/failed_store.hpp"
#include "sluice/buffer/log_layout.hpp"
#include "sluice/buffer/segment_reader.hpp"

#include <spdlog/spdlog.h>

namespace sluice::buffer {
namespace {

namespace fs = std::filesystem;

std::error_code last_error() {
  return {errno, std::system_category()};
}

void remove_tmp_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().ends_with(layout::tmp_suffix)) {
      std::error_code rm;
      fs::remove(it->path(), rm);
      spdlog::info("buffer: removed unfinished file file={}", it->path().string());
    }
  }
}

std::error_code truncate_file(const fs::path& path, std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return last_error();
  std::error_code ec;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0 || ::fdatasync(fd) != 0)
    ec = last_error();
  ::close(fd);
  return ec;
}

}  // namespace

recovery_report recover_log(const fs::path& dir, std::error_code& ec) {
  recovery_report report;
  fs::create_directories(dir, ec);
  if (ec)
    return report;
  remove_tmp_files(dir);
  remove_tmp_files(dir / layout::failed_dir);

  const auto files = layout::list_files(dir, layout::segment_suffix, ec);
  if (ec)
    return report;
  std::optional<record_position> saved_ack = load_ack_cursor(dir);
  if (saved_ack && saved_ack->segment > layout::max_segment_id) {
    spdlog::warn("buffer: ignoring an ack cursor with an impossible segment id dir={} id={}",
                 dir.string(), saved_ack->segment);
    saved_ack.reset();
  }
  report.ack = saved_ack.value_or(record_position{});
  std::uint64_t max_id = report.ack.segment;

  // A file recovery cannot use goes to quarantine/. One that cannot be moved stays where it is
  // (recovery fails on it again next time); the ids it could clash with are skipped anyway.
  const auto set_aside = [&](const fs::path& path, const std::string& why) {
    if (auto q = layout::quarantine_file(dir, path)) {
      spdlog::error("buffer: cannot quarantine segment file={} reason=\"{}\" error={}",
                    path.string(), why, q.message());
      return;
    }
    ++report.quarantined_segments;
    spdlog::error("buffer: quarantined segment file={} reason=\"{}\"", path.string(), why);
  };

  for (const auto& [id, path] : files) {
    // Ids count segments from 1; one near 2^64 is no segment of ours, and counting it would
    // wrap the next id to 0 and put new records before the old ones.
    if (id > layout::max_segment_id) {
      set_aside(path, "impossible segment id");
      continue;
    }
    max_id = std::max(max_id, id);
    segment_reader reader;
    std::error_code open_ec = reader.open(path);
    if (!open_ec && (reader.header().id != id || reader.header().kind != file_kind::log_segment)) {
      open_ec = errc::bad_segment_header;
    }
    if (open_ec && !proves_corruption(open_ec)) {
      ec = open_ec;
      spdlog::error("buffer: cannot open segment, not opening the log file={} error={}",
                    path.string(), ec.message());
      return report;
    }
    if (open_ec) {
      reader.close();
      std::error_code size_ec;
      const auto size = fs::file_size(path, size_ec);
      set_aside(path, "unreadable: " + open_ec.message());
      report.quarantined_bytes += size_ec ? 0 : size;
      continue;
    }

    recovered_segment seg;
    seg.id = id;
    const bool ack_here = id == report.ack.segment;
    bool ack_on_boundary = !ack_here || report.ack.offset == segment_header_size;
    std::optional<std::int64_t> first_pending_created_ms;
    bool torn = false;
    record_view rec;
    std::error_code rec_ec;
    for (;;) {
      while (auto m = reader.next_message(rec, rec_ec)) {
        ++seg.records;
        seg.record_bytes += rec.size;
        if (!seg.first_created_ms)
          seg.first_created_ms = m->created_ms;
        const bool acked = ack_here && rec.offset < report.ack.offset;
        if (acked) {
          ++seg.acked_records;
          seg.acked_bytes += rec.size;
        } else if (!first_pending_created_ms) {
          first_pending_created_ms = m->created_ms;
        }
        if (ack_here &&
            (rec.offset == report.ack.offset || rec.offset + rec.size == report.ack.offset)) {
          ack_on_boundary = true;
        }
      }
      if (!rec_ec)
        break;
      const std::uint64_t bad = reader.offset();
      std::optional<std::uint64_t> next;
      std::error_code scan_ec;
      if (!proves_corruption(rec_ec) || !reader.find_next_record(bad, next, scan_ec)) {
        ec = scan_ec ? scan_ec : rec_ec;
        spdlog::error("buffer: cannot read segment, not opening the log file={} offset={} error={}",
                      path.string(), bad, ec.message());
        return report;
      }
      if (!next) {
        torn = true;
        break;
      }
      seg.holes.push_back({bad, *next});
      ++report.unreadable_ranges;
      const std::uint64_t lost = reader.count_frames(bad, *next);
      report.unreadable_records += lost;
      std::error_code save_ec;
      report.quarantined_bytes += layout::copy_to_quarantine(dir, path, bad, *next, "bad", save_ec);
      spdlog::error(
          "buffer: corrupt records set aside file={} offset={} end={} records={} error={} "
          "copied_to_quarantine={}",
          path.string(), bad, *next, lost, rec_ec.message(),
          save_ec ? "no (" + save_ec.message() + ")" : "yes");
      reader.seek(*next);
      rec_ec.clear();
    }
    seg.end = reader.offset();
    if (torn) {
      ++report.truncated_tails;
      spdlog::warn("buffer: truncated torn tail file={} offset={} error={}", path.string(), seg.end,
                   rec_ec.message());
      const std::uint64_t size = reader.file_size();
      reader.close();
      std::error_code save_ec;
      report.quarantined_bytes +=
          layout::copy_to_quarantine(dir, path, seg.end, size, "tail", save_ec);
      if (save_ec) {
        // Without a copy the bytes stay in the file (replay still stops at seg.end), so an
        // operator can still inspect them.
        spdlog::error("buffer: cannot copy torn tail to quarantine file={} error={}", path.string(),
                      save_ec.message());
      } else if (auto trunc_ec = truncate_file(path, seg.end)) {
        spdlog::error("buffer: cannot truncate torn tail file={} error={}", path.string(),
                      trunc_ec.message());
      }
    }
    reader.close();

    // A cursor past the valid end acknowledged every record that survived.
    if (ack_here && report.ack.offset >= seg.end)
      ack_on_boundary = true;
    bool ack_on_boundary_reset = false;
    if (ack_here && !ack_on_boundary) {
      ack_on_boundary_reset = true;
      spdlog::warn("buffer: ack cursor not on a record boundary file={} offset={}", path.string(),
                   report.ack.offset);
      report.ack.offset = segment_header_size;
      seg.acked_records = seg.acked_bytes = 0;
    }
    const bool fully_acked =
        id < report.ack.segment || (ack_here && seg.acked_records == seg.records);
    if (fully_acked || seg.records == 0) {
      std::error_code rm;
      fs::remove(path, rm);
      ++report.removed_segments;
      spdlog::info("buffer: removed drained segment file={} records={}", path.string(),
                   seg.records);
      continue;
    }
    if (!report.head_created_ms)
      report.head_created_ms =
          ack_here && !ack_on_boundary_reset ? first_pending_created_ms : seg.first_created_ms;
    report.segments.push_back(seg);
  }
  report.next_segment_id = max_id + 1;

  std::error_code failed_ec;
  for (const auto& f : scan_failed_files(dir, failed_ec)) {
    report.failed_records += f.records;
    report.failed_bytes += f.bytes;
    report.next_failed_id = std::max(report.next_failed_id, f.id + 1);
  }
  if (failed_ec) {
    spdlog::error("buffer: cannot list failed records dir={} error={}", dir.string(),
                  failed_ec.message());
  }
  return report;
}

}  // namespace sluice::buffer
