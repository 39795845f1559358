#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

#include "sluice/buffer/record_position.hpp"
#include "sluice/buffer/segment_reader.hpp"

namespace sluice::buffer {

// A byte range of committed records to read: [begin, end) of one segment.
struct read_extent {
  std::uint64_t segment = 0;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

// Records proven corrupt (errc.hpp: proves_corruption): [begin, end) of a segment is set aside.
// Only disk corruption after recovery (or files changed behind the log's back) produces one;
// its bytes are copied to quarantine/<segment>.<begin>.bad first.
struct unreadable_range {
  std::uint64_t segment = 0;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::error_code error;
  std::uint64_t records = 0;            // segment_reader::count_frames
  std::uint64_t quarantined_bytes = 0;  // copied to quarantine/
  bool saved = false;                   // the copy succeeded
};

struct replay_chunk {
  std::vector<buffered_record> records;   // in log order
  std::vector<unreadable_range> skipped;  // in log order, interleaved by position with records
  std::optional<std::int64_t> next_created_ms;  // of the first record not returned, if known
  // An I/O error that is not proof of corruption (EMFILE, ENOMEM, EIO, ...) ended the read;
  // `records` and `skipped` hold what came before it. Nothing after it is skipped.
  std::error_code error;
};

// The replay side of a log: reads committed records in order on the blocking thread, keeping
// the current segment open between calls. Not thread-safe; one owner thread.
class replay_reader {
 public:
  explicit replay_reader(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Reads up to max_records from the extents, in order. A record that fails its checks starts
  // an unreadable_range (logged) that ends at the next valid record (find_next_record) or at
  // the end of the extent, and reading goes on after it, so corruption never blocks replay.
  // Any other failure stops the read with chunk.error, so the caller retries it later.
  replay_chunk read(const std::vector<read_extent>& extents, std::size_t max_records);

  // Drops the open file if it is `segment` (before it is deleted).
  void forget(std::uint64_t segment);

 private:
  segment_reader* reader_for(std::uint64_t segment, std::error_code& ec);
  // Copies the range to quarantine/ and logs it.
  void set_aside(unreadable_range& range);

  std::filesystem::path dir_;
  std::uint64_t open_segment_ = 0;
  segment_reader reader_;
};

}  // namespace sluice::buffer
