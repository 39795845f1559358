#pragma once

// The disk side of a retry of failed/ (buffer_log::retry_failed): which records one retry takes
// and how failed/ looks afterwards. Both functions block and run on the log's blocking thread
// (blocking_worker.hpp); the loop owns the retry itself, its append and the failed/ counters,
// and only hands them a plan.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <system_error>
#include <vector>

#include "sluice/buffer/buffer_log.hpp"
#include "sluice/buffer/record_format.hpp"

namespace sluice::buffer::detail {

// What one filtered retry takes out of failed/.
struct retry_plan {
  struct file_change {
    std::uint64_t id = 0;
    std::filesystem::path path;
    std::vector<failed_message> keep;  // written back under the same id
    bool damaged = false;              // moved to quarantine/ with all it held
    std::uint64_t unreadable = 0;      // records counted at start-up it no longer gives back
    std::uint64_t old_bytes = 0;
  };
  std::vector<message> messages;
  std::vector<file_change> changes;
  std::size_t remaining = 0;  // matching records left (filtered retries only)
  std::error_code ec;
};

// Reads failed files in id order, one at a time; only files it takes from are kept in memory.
// Without a filter it stops once the batch is full.
retry_plan plan_retry(const std::filesystem::path& log_dir, const retry_filter& filter);

// After the append: failed/ without the retried records. Returns the bytes failed/ shrank by.
std::uint64_t apply_retry(const std::filesystem::path& log_dir, const retry_plan& plan);

}  // namespace sluice::buffer::detail
