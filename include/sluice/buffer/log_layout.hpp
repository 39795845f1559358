#pragma once

// Layout of one log directory (e.g. FILE_BUFFER_DIR/failover):
//
//   00000000000000000007.seg   log segments, named by id (20 decimal digits, so names sort
//   00000000000000000008.seg   like ids); records are replayed in id order, then file order
//   ack                        the replay cursor: everything before it was acknowledged
//                              (ack_cursor.hpp); a hint only, never needed for correctness
//   lock                       flock()ed by the process that has the log open
//   failed/NNN….failed         records PostgreSQL rejected permanently, one file per call
//   quarantine/                segments recovery could not read at all (moved here whole), the
//                              bytes it cut off torn segment tails (<segment file>.<offset>.tail)
//                              and copies of corrupt ranges skipped inside a segment
//                              (<segment file>.<offset>.bad), kept for an operator to inspect or
//                              re-import (`sluice buffer import`)
//
// A segment or failed file is created as <name>.tmp, written, fsynced and renamed, so a file
// with the final name always has a complete header.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sluice::buffer::layout {

inline constexpr std::string_view segment_suffix = ".seg";
// Segment ids count up from 1, one per segment ever written; a trillion segments of the
// smallest size is past any disk. Larger ids are not segments of this log (recovery
// quarantines them), so the next id can never wrap.
inline constexpr std::uint64_t max_segment_id = 1'000'000'000'000;
inline constexpr std::string_view failed_suffix = ".failed";
inline constexpr std::string_view tmp_suffix = ".tmp";
inline constexpr std::string_view ack_file = "ack";
inline constexpr std::string_view lock_file = "lock";
inline constexpr std::string_view failed_dir = "failed";
inline constexpr std::string_view quarantine_dir = "quarantine";

std::string file_name(std::uint64_t id, std::string_view suffix);
// The id of "<20 digits><suffix>", or nothing for any other name.
std::optional<std::uint64_t> parse_file_name(std::string_view name, std::string_view suffix);

// The files of `dir` named "<id><suffix>", sorted by id. A missing directory is empty.
std::vector<std::pair<std::uint64_t, std::filesystem::path>> list_files(
    const std::filesystem::path& dir, std::string_view suffix, std::error_code& ec);

// True if `dir` holds segments, an ack or lock file or a failed/ folder: a log rather than a
// parent of logs.
bool is_log_dir(const std::filesystem::path& dir);

// fsync() a directory so a rename or create in it survives a crash.
std::error_code sync_directory(const std::filesystem::path& dir);

// A name in quarantine/ for `file_name` that does not exist yet (adds .1, .2, … if needed).
std::filesystem::path quarantine_path(const std::filesystem::path& log_dir,
                                      std::string_view file_name);

// Moves `file` into quarantine/, creating the folder.
std::error_code quarantine_file(const std::filesystem::path& log_dir,
                                const std::filesystem::path& file);

// Copies bytes [begin, end) of `file` (fewer if the file is shorter) to a new, fsynced file
// quarantine/<file name>.<begin>.<suffix>; the number of bytes copied.
std::uint64_t copy_to_quarantine(const std::filesystem::path& log_dir,
                                 const std::filesystem::path& file, std::uint64_t begin,
                                 std::uint64_t end, std::string_view suffix, std::error_code& ec);

}  // namespace sluice::buffer::layout
