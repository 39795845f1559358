#pragma once

#include <string>
#include <system_error>

namespace sluice::buffer {

// Expected failures of the file buffer. I/O failures keep their errno (std::system_category).
enum class errc {
  buffer_full = 1,     // the append would exceed max_total_bytes; nothing was written
  closed,              // the log was closed
  record_too_large,    // one message encodes to more than max_record_bytes
  busy,                // a read_batch is already in progress
  unknown_position,    // acknowledge() got a position read_batch never returned
  bad_segment_header,  // magic, version, kind, id or header CRC wrong, or the file is too short
  torn_record,         // the record runs past the end of the file (an interrupted write)
  bad_record_length,   // the length field is out of bounds
  crc_mismatch,        // the record's CRC32C does not match its bytes
  malformed_record,    // CRC fine but the body does not decode (version or writer bug)
  log_locked,          // another process holds the log directory
};

const std::error_category& buffer_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), buffer_category()};
}

}  // namespace sluice::buffer

template <>
struct std::is_error_code_enum<sluice::buffer::errc> : std::true_type {};
