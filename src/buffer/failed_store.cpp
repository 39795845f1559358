#include "sluice/buffer/failed_store.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/buffer/errc.hpp"
#include "sluice/buffer/log_layout.hpp"
#include "sluice/buffer/segment_reader.hpp"

#include <spdlog/spdlog.h>

namespace sluice::buffer {
namespace {

std::error_code last_error() {
  return {errno, std::system_category()};
}

std::error_code write_whole(const std::filesystem::path& log_dir, std::uint64_t id,
                            const std::string& bytes) {
  const auto dir = log_dir / layout::failed_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return ec;
  const std::string name = layout::file_name(id, layout::failed_suffix);
  const auto tmp = dir / (name + std::string(layout::tmp_suffix));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return last_error();
  std::string_view rest = bytes;
  while (!ec && !rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno != EINTR)
      ec = last_error();
    if (n > 0)
      rest.remove_prefix(static_cast<std::size_t>(n));
  }
  if (!ec && ::fdatasync(fd) != 0)
    ec = last_error();
  ::close(fd);
  if (!ec && ::rename(tmp.c_str(), (dir / name).c_str()) != 0)
    ec = last_error();
  if (!ec)
    ec = layout::sync_directory(dir);
  if (ec)
    ::unlink(tmp.c_str());
  return ec;
}

// Frames counted from their headers alone; stops at the first one that is implausible or runs
// past the end of the file.
std::uint64_t count_frames(int fd, std::uint64_t size) {
  std::uint64_t n = 0;
  std::uint64_t at = segment_header_size;
  char frame[record_header_size];
  while (size - at >= record_header_size) {
    const ssize_t got = ::pread(fd, frame, sizeof frame, static_cast<off_t>(at));
    if (got < 0 && errno == EINTR)
      continue;
    if (got != static_cast<ssize_t>(sizeof frame))
      break;
    std::error_code ec;
    const auto f = decode_record_frame(std::string_view(frame, sizeof frame), ec);
    if (!f || f->body_size > size - at - record_header_size)
      break;
    ++n;
    at += record_header_size + f->body_size;
  }
  return n;
}

}  // namespace

failed_file_summary summarize_failed_file(std::uint64_t id, const std::filesystem::path& path) {
  failed_file_summary s;
  s.id = id;
  s.path = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    spdlog::warn("buffer: cannot open failed file file={} error={}", path.string(),
                 last_error().message());
    std::error_code ec;
    s.bytes = std::filesystem::file_size(path, ec);
    return s;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0)
    s.bytes = static_cast<std::uint64_t>(st.st_size);
  char header[segment_header_size];
  std::error_code ec;
  if (s.bytes >= segment_header_size &&
      ::pread(fd, header, sizeof header, 0) == static_cast<ssize_t>(sizeof header)) {
    const auto h = decode_segment_header(std::string_view(header, sizeof header), ec);
    if (h && h->kind == file_kind::failed_records)
      s.records = count_frames(fd, s.bytes);
  }
  ::close(fd);
  return s;
}

std::uint64_t failed_file_size(std::span<const message> records, std::string_view reason) {
  std::uint64_t n = segment_header_size;
  for (const auto& m : records)
    n += encoded_size(m) + 8 + 4 + reason.size();
  return n;
}

std::error_code write_failed_file(const std::filesystem::path& log_dir, std::uint64_t id,
                                  std::span<const message> records, std::string_view reason,
                                  std::int64_t failed_ms) {
  std::string bytes;
  bytes.reserve(failed_file_size(records, reason));
  encode_segment_header({file_kind::failed_records, id, failed_ms}, bytes);
  for (const auto& m : records)
    encode_failed_record(m, failed_ms, reason, bytes);
  return write_whole(log_dir, id, bytes);
}

std::error_code rewrite_failed_file(const std::filesystem::path& log_dir, std::uint64_t id,
                                    std::span<const failed_message> records,
                                    std::int64_t created_ms) {
  std::string bytes;
  encode_segment_header({file_kind::failed_records, id, created_ms}, bytes);
  for (const auto& f : records)
    encode_failed_record(f.msg, f.failed_ms, f.reason, bytes);
  return write_whole(log_dir, id, bytes);
}

std::vector<failed_file_summary> scan_failed_files(const std::filesystem::path& log_dir,
                                                   std::error_code& ec) {
  std::vector<failed_file_summary> out;
  const auto files = layout::list_files(log_dir / layout::failed_dir, layout::failed_suffix, ec);
  if (ec)
    return out;
  out.reserve(files.size());
  for (const auto& [id, path] : files)
    out.push_back(summarize_failed_file(id, path));
  return out;
}

failed_file read_failed_file(std::uint64_t id, const std::filesystem::path& path) {
  failed_file f;
  f.id = id;
  f.path = path;
  segment_reader reader;
  f.error = reader.open(path);
  if (!f.error && (reader.header().kind != file_kind::failed_records || reader.header().id != id)) {
    f.error = errc::bad_segment_header;
    reader.close();
  }
  record_view rec;
  while (!f.error && reader.next(rec, f.error)) {
    if (rec.kind != record_kind::failed_message) {
      f.error = errc::malformed_record;
      break;
    }
    auto decoded = decode_failed_body(rec.body, f.error);
    if (!decoded)
      break;
    f.records.push_back(std::move(*decoded));
  }
  if (f.error) {
    f.error_offset = reader.is_open() ? reader.offset() : 0;
    spdlog::warn("buffer: unreadable failed record file={} offset={} error={}", path.string(),
                 f.error_offset, f.error.message());
  }
  return f;
}

}  // namespace sluice::buffer
