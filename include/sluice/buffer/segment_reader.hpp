#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "sluice/buffer/record_format.hpp"

namespace sluice::buffer {

// One record as read from a file; `body` points into the reader's buffer and stays valid until
// the next call on the reader.
struct record_view {
  std::uint64_t offset = 0;  // of the frame header
  std::uint32_t size = 0;    // frame header + body
  record_kind kind = record_kind::message;
  std::string_view body;
};

// Reads the records of one segment or failed file in order, checking each record's length and
// CRC. Reads whole chunks with pread() so scanning a segment costs few system calls. Blocking:
// use it off the event loop.
class segment_reader {
 public:
  segment_reader() = default;
  segment_reader(segment_reader&& other) noexcept;
  segment_reader& operator=(segment_reader&& other) noexcept;
  segment_reader(const segment_reader&) = delete;
  segment_reader& operator=(const segment_reader&) = delete;
  ~segment_reader();

  // Opens the file and checks its header: errc::bad_segment_header, or the errno of open/read.
  // Positions the reader at the first record with the limit at the current file size.
  std::error_code open(const std::filesystem::path& path);
  // Opens a file of bare records (a copy of part of a segment in quarantine/): no header is
  // checked and the reader starts at offset 0.
  std::error_code open_headerless(const std::filesystem::path& path);
  bool is_open() const { return fd_ >= 0; }
  void close();

  const segment_header& header() const { return header_; }
  const std::filesystem::path& path() const { return path_; }
  std::uint64_t file_size() const { return file_size_; }

  // `offset` must be a record boundary; `limit` is where the records are known to end (a log's
  // committed end). Records are never read past the limit.
  void seek(std::uint64_t offset) { offset_ = offset; }
  void set_limit(std::uint64_t limit) { limit_ = limit; }
  std::uint64_t offset() const { return offset_; }
  std::uint64_t limit() const { return limit_; }

  // The record at offset(), after which offset() moves past it. Returns false at the limit
  // (ec clear) or when the record at offset() is bad (ec says why; offset() stays on it):
  // errc::torn_record, bad_record_length, malformed_record, crc_mismatch, or an errno.
  bool next(record_view& out, std::error_code& ec);

  // next(), decoded as a message (kind 1): nothing at the limit (ec clear) or for a bad record
  // (ec says why; errc::malformed_record for another kind or a body that does not decode), and
  // then offset() stays on it.
  std::optional<message> next_message(record_view& out, std::error_code& ec);

  // created_ms of the record at offset(), read without checking it; nothing at the limit.
  std::optional<std::int64_t> peek_created_ms();

  // After a bad record at `bad`: the offset of the first record after it that passes every
  // frame check (version, kind, reserved bytes 0, a length within the limit) and its CRC,
  // trying every byte offset in (bad, limit) (record_format.hpp says why this is safe). Nothing
  // if there is none before the limit; false with ec set on an I/O error.
  bool find_next_record(std::uint64_t bad, std::optional<std::uint64_t>& found,
                        std::error_code& ec);

  // How many records [begin, end) held, walking their length fields while they stay inside
  // it: exact when only bodies were damaged, at least 1 otherwise. No CRC is checked.
  std::uint64_t count_frames(std::uint64_t begin, std::uint64_t end);

 private:
  // Makes bytes [offset, offset + size) available in buf_; false on a short read.
  bool fill(std::uint64_t offset, std::size_t size, std::error_code& ec);

  int fd_ = -1;
  std::filesystem::path path_;
  segment_header header_;
  std::uint64_t file_size_ = 0;
  std::uint64_t offset_ = 0;
  std::uint64_t limit_ = 0;
  std::string buf_;
  std::uint64_t buf_offset_ = 0;  // file offset of buf_[0]
};

}  // namespace sluice::buffer
