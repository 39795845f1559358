#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::buffer {

// When an append's bytes reach the disk.
enum class fsync_policy {
  always,    // the append completes only after the fdatasync() that covers it (group commit)
  interval,  // the append completes once written; fdatasync() every flush_interval
  never,     // the append completes once written; the kernel flushes when it likes
};

std::optional<fsync_policy> parse_fsync_policy(std::string_view text);  // always|interval|never
std::string_view to_string(fsync_policy policy);

// One log's settings; the app maps the FILE_BUFFER_* settings onto it.
struct buffer_options {
  fsync_policy fsync = fsync_policy::always;              // FILE_BUFFER_FSYNC
  std::chrono::milliseconds flush_interval{10};           // FILE_BUFFER_FLUSH_MS
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;  // FILE_BUFFER_SEGMENT_BYTES
  std::chrono::milliseconds segment_max_age = std::chrono::hours(1);
  // Bytes of segment files on disk, queued appends included (failed/ is not counted);
  // 0 = unbounded.
  std::uint64_t max_total_bytes = std::uint64_t{1} << 30;  // FILE_BUFFER_MAX_BYTES
  std::size_t replay_batch = 1000;                         // FILE_BUFFER_MAX_BATCH
  // Bytes of failed/ on disk (records PostgreSQL rejected); 0 = unbounded. At the bound a
  // quarantine fails (errc::failed_full) and the record stays pending in the log.
  std::uint64_t max_failed_bytes = std::uint64_t{256} << 20;  // FILE_BUFFER_FAILED_MAX_BYTES
};

}  // namespace sluice::buffer
