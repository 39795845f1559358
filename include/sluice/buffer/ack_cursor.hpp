#pragma once

// The ack file of a log directory remembers how far replay was acknowledged, so a restart does
// not replay a partially acknowledged segment from its start. It is a hint: losing it (or
// finding it stale) only means re-replaying records PostgreSQL already has, which it
// deduplicates by message id. So it is overwritten in place and never fsynced.
//
//   offset size  field
//   0      4     magic "SLAK"
//   4      4     version = 1 (u32 LE)
//   8      8     segment id (u64 LE)
//   16     8     offset (u64 LE): everything in that segment before it is acknowledged, and so
//                is every segment with a smaller id
//   24     4     CRC32C of bytes [0, 24)
//
// A torn or corrupt file fails its CRC and is ignored.

#include <filesystem>
#include <optional>
#include <system_error>

#include "sluice/buffer/record_position.hpp"

namespace sluice::buffer {

inline constexpr std::size_t ack_file_size = 28;

// Reads <dir>/ack; nothing if it is missing or invalid.
std::optional<record_position> load_ack_cursor(const std::filesystem::path& dir);

class ack_cursor_file {
 public:
  ack_cursor_file() = default;
  ack_cursor_file(const ack_cursor_file&) = delete;
  ack_cursor_file& operator=(const ack_cursor_file&) = delete;
  ~ack_cursor_file();

  std::error_code open(const std::filesystem::path& dir);
  // One pwrite() of 28 bytes; no fsync (see above).
  std::error_code store(const record_position& position);
  void close();

 private:
  int fd_ = -1;
};

}  // namespace sluice::buffer
