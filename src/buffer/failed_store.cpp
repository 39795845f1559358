#include "sluice/buffer/failed_store.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string>
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

}  // namespace

std::error_code write_failed_file(const std::filesystem::path& log_dir, std::uint64_t id,
                                  std::span<const message> records, std::string_view reason,
                                  std::int64_t failed_ms) {
  const auto dir = log_dir / layout::failed_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return ec;
  std::string bytes;
  encode_segment_header({file_kind::failed_records, id, failed_ms}, bytes);
  for (const auto& m : records)
    encode_failed_record(m, failed_ms, reason, bytes);

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

std::vector<failed_file> read_failed_files(const std::filesystem::path& log_dir,
                                           std::error_code& ec) {
  std::vector<failed_file> out;
  const auto files = layout::list_files(log_dir / layout::failed_dir, layout::failed_suffix, ec);
  if (ec)
    return out;
  for (const auto& [id, path] : files) {
    failed_file f;
    f.id = id;
    f.path = path;
    segment_reader reader;
    f.error = reader.open(path);
    if (!f.error && reader.header().kind != file_kind::failed_records) {
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
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace sluice::buffer
