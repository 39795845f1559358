#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "sluice/buffer/record_format.hpp"

namespace sluice::buffer {

// Owns the file descriptor of the segment being written. Two positions are explicit:
// written() — bytes handed to the kernel (readable by other file descriptors, lost by a power
// cut) and flushed() — bytes covered by a completed fdatasync(). Only the log's writer thread
// uses an appender; every call blocks.
class segment_appender {
 public:
  segment_appender() = default;
  segment_appender(const segment_appender&) = delete;
  segment_appender& operator=(const segment_appender&) = delete;
  ~segment_appender();

  // Creates <dir>/<file name of header.id with suffix>: writes the header to a .tmp file,
  // fsyncs it (when `durable`), renames it into place and fsyncs the directory, so a crash
  // never leaves a segment without a complete header.
  std::error_code create(const std::filesystem::path& dir, const segment_header& header,
                         std::string_view suffix, bool durable);

  bool is_open() const { return fd_ >= 0; }
  std::uint64_t id() const { return id_; }
  const std::filesystem::path& path() const { return path_; }
  std::uint64_t written() const { return written_; }
  std::uint64_t flushed() const { return flushed_; }
  std::chrono::steady_clock::time_point opened_at() const { return opened_at_; }

  // Writes all of `bytes` at written() (retrying short writes). On error the file may hold part
  // of them; truncate(written()) drops it.
  std::error_code append(std::string_view bytes);
  // fdatasync(): afterwards flushed() == written().
  std::error_code sync();
  // Cuts the file back to `size` (<= written()) after a failed append.
  std::error_code truncate(std::uint64_t size);
  void close();

 private:
  int fd_ = -1;
  std::uint64_t id_ = 0;
  std::filesystem::path path_;
  std::uint64_t written_ = 0;
  std::uint64_t flushed_ = 0;
  std::chrono::steady_clock::time_point opened_at_{};
};

}  // namespace sluice::buffer
