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
  failed_full,         // failed/ would exceed max_failed_bytes; nothing was written
};

const std::error_category& buffer_category() noexcept;

// True when `ec`, met while reading committed records, proves the bytes on disk are bad: a
// header, length, CRC or body check failed on bytes actually read, or the file ended before
// the committed end (a short read: the file was cut behind the log's back). Every errno is
// false, EIO and ENOENT included: EMFILE, ENFILE, ENOMEM and EINTR pass, EIO may be a device
// reset or a network file system, and a segment deleted behind the log's back disappears from
// the log at the next start. Setting records aside costs answered records, retrying costs a
// stalled (and visibly failing) replay, so only proof of corruption sets records aside.
bool proves_corruption(std::error_code ec) noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), buffer_category()};
}

}  // namespace sluice::buffer

template <>
struct std::is_error_code_enum<sluice::buffer::errc> : std::true_type {};
