#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

#include "sluice/buffer/record_position.hpp"

namespace sluice::buffer {

// Bytes [begin, end) of a segment that hold no readable record.
struct byte_range {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

struct recovered_segment {
  std::uint64_t id = 0;
  std::uint64_t end = 0;  // end of the last valid record (the file size once truncated)
  std::uint64_t records = 0;
  std::uint64_t record_bytes = 0;
  std::uint64_t acked_records = 0;  // before the ack cursor
  std::uint64_t acked_bytes = 0;
  std::optional<std::int64_t> first_created_ms;
  std::vector<byte_range> holes;  // corrupt ranges between valid records, in order
};

struct recovery_report {
  std::vector<recovered_segment> segments;      // by id; each holds at least one pending record
  record_position ack;                          // the effective ack cursor
  std::optional<std::int64_t> head_created_ms;  // of the first record after `ack`
  std::uint64_t next_segment_id = 1;
  std::uint64_t truncated_tails = 0;
  std::uint64_t quarantined_segments = 0;
  std::uint64_t removed_segments = 0;    // fully acknowledged or empty
  std::uint64_t unreadable_ranges = 0;   // corrupt ranges with valid records after them
  std::uint64_t unreadable_records = 0;  // segment_reader::count_frames of those ranges
  std::uint64_t quarantined_bytes = 0;   // copied or moved to quarantine/
  std::uint64_t failed_records = 0;      // counted from frame headers, payloads unread
  std::uint64_t failed_bytes = 0;        // size of the files in failed/
  std::uint64_t next_failed_id = 1;
};

// Brings a log directory to a consistent state before it is opened; blocking. Scans every
// segment in id order and checks every record. At a bad record (bad length, torn, CRC
// mismatch, undecodable body) recovery looks for the next valid record after it
// (segment_reader::find_next_record):
// - if there is one, the bytes in between are a corrupt range: copied to
//   quarantine/<segment>.<offset>.bad, counted, left in place and skipped by replay (a hole);
//   the records after it are kept. This is corruption inside a written segment, not a torn
//   write, wherever the segment is in the log.
// - if there is none, the bad record starts a torn tail (the normal end of the newest segment
//   after a crash; rare but treated the same in a sealed one): the rest of the segment is
//   copied to quarantine/<segment>.<offset>.tail and the segment is truncated there.
// A segment whose header cannot be read is moved to quarantine/ whole. Segments left with no
// pending record (before the ack cursor, or empty) are deleted, as are leftover .tmp files.
// failed/ is counted from file and frame headers only. Each event is logged and counted. Fails
// (ec) on a directory that cannot be created or listed, and on an I/O error that does not prove
// corruption (errc.hpp: proves_corruption), such as EMFILE or ENOMEM while reading a segment:
// cutting records because of it would lose them, so opening the log fails and can be retried.
recovery_report recover_log(const std::filesystem::path& dir, std::error_code& ec);

}  // namespace sluice::buffer
