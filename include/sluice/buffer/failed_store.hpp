#pragma once

// failed/ of a log directory holds records PostgreSQL rejected permanently (a constraint the
// message can never satisfy), so replay can move on without losing them. Each quarantine call
// writes one file <id>.failed in the segment format (file kind 2) whose records are kind 2:
// the message plus when and why it failed (record_format.hpp). Files are written whole to a
// .tmp name, fsynced and renamed, so a failed file is either complete or absent.

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

std::error_code write_failed_file(const std::filesystem::path& log_dir, std::uint64_t id,
                                  std::span<const message> records, std::string_view reason,
                                  std::int64_t failed_ms);

// Every failed file in id order with the records that could be read.
std::vector<failed_file> read_failed_files(const std::filesystem::path& log_dir,
                                           std::error_code& ec);

}  // namespace sluice::buffer
