#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

#include "sluice/buffer/record_position.hpp"

namespace sluice::buffer {

struct recovered_segment {
  std::uint64_t id = 0;
  std::uint64_t end = 0;  // end of the last valid record (the file size once truncated)
  std::uint64_t records = 0;
  std::uint64_t record_bytes = 0;
  std::uint64_t acked_records = 0;  // before the ack cursor
  std::uint64_t acked_bytes = 0;
  std::optional<std::int64_t> first_created_ms;
};

struct recovery_report {
  std::vector<recovered_segment> segments;      // by id; each holds at least one pending record
  record_position ack;                          // the effective ack cursor
  std::optional<std::int64_t> head_created_ms;  // of the first record after `ack`
  std::uint64_t next_segment_id = 1;
  std::uint64_t truncated_tails = 0;
  std::uint64_t quarantined_segments = 0;
  std::uint64_t removed_segments = 0;  // fully acknowledged or empty
  std::uint64_t failed_records = 0;
  std::uint64_t next_failed_id = 1;
};

// Brings a log directory to a consistent state before it is opened; blocking. Scans every
// segment in id order and checks every record. At the first bad record of a segment (bad
// length, torn, CRC mismatch, undecodable body) the rest of the segment is copied to
// quarantine/<segment>.<offset>.tail and the segment is truncated there. A segment whose header
// cannot be read is moved to quarantine/ whole. Segments left with no pending record (before
// the ack cursor, or empty) are deleted, as are leftover .tmp files. Each event is logged and
// counted; only a directory that cannot be created or listed fails (ec).
recovery_report recover_log(const std::filesystem::path& dir, std::error_code& ec);

}  // namespace sluice::buffer
