#pragma once

// failed/ of a log directory holds records PostgreSQL rejected permanently (a constraint the
// message can never satisfy), so replay can move on without losing them. Each quarantine call
// writes one file <id>.failed in the segment format (file kind 2) whose records are kind 2:
// the message plus when and why it failed (record_format.hpp). Files are written whole to a
// .tmp name, fsynced and renamed, so a failed file is either complete or absent. A retry that
// takes only some records of a file (a filter, a batch limit) rewrites it the same way with
// the records it left, under the same id.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

#include "sluice/buffer/record_format.hpp"

namespace sluice::buffer {

struct failed_file {
  std::uint64_t id = 0;
  std::filesystem::path path;
  std::vector<failed_message> records;
  std::error_code error;  // why reading stopped early, if it did
  std::uint64_t error_offset = 0;
};

// What start-up needs to count and bound failed/, without reading payloads.
struct failed_file_summary {
  std::uint64_t id = 0;
  std::filesystem::path path;
  std::uint64_t records = 0;  // complete frames, CRCs unchecked
  std::uint64_t bytes = 0;    // file size
};

// The bytes write_failed_file writes for these records.
std::uint64_t failed_file_size(std::span<const message> records, std::string_view reason);

std::error_code write_failed_file(const std::filesystem::path& log_dir, std::uint64_t id,
                                  std::span<const message> records, std::string_view reason,
                                  std::int64_t failed_ms);

// Replaces failed file `id` with `records` (each keeps its own reason and time).
std::error_code rewrite_failed_file(const std::filesystem::path& log_dir, std::uint64_t id,
                                    std::span<const failed_message> records,
                                    std::int64_t created_ms);

// Every failed file in id order, reading only the file header and each record's 12-byte frame
// header (one pread each): a file of N records costs N + 1 small reads, whatever its payloads.
std::vector<failed_file_summary> scan_failed_files(const std::filesystem::path& log_dir,
                                                   std::error_code& ec);

// One file's entry of scan_failed_files.
failed_file_summary summarize_failed_file(std::uint64_t id, const std::filesystem::path& path);

// One failed file with the records that could be read.
failed_file read_failed_file(std::uint64_t id, const std::filesystem::path& path);

}  // namespace sluice::buffer
