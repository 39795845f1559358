#include "sluice/buffer/segment_appender.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <string>
#include <unistd.h>

#include "sluice/buffer/log_layout.hpp"

namespace sluice::buffer {
namespace {

std::error_code last_error() {
  return {errno, std::system_category()};
}

std::error_code write_all(int fd, std::string_view bytes, std::uint64_t offset) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return last_error();
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

// Moves `tmp` to `final_path` unless something is already there (a segment a previous run left,
// a stray directory): replacing it would destroy its records. EEXIST then; the writer moves on
// to the next id. Filesystems without RENAME_NOREPLACE get link + unlink, which never replaces
// either.
std::error_code publish_new(const std::filesystem::path& tmp,
                            const std::filesystem::path& final_path) {
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) == 0)
    return {};
  if (errno != EINVAL && errno != ENOSYS)
    return last_error();
  if (::link(tmp.c_str(), final_path.c_str()) != 0)
    return last_error();
  ::unlink(tmp.c_str());
  return {};
}

}  // namespace

segment_appender::~segment_appender() {
  close();
}

std::error_code segment_appender::create(const std::filesystem::path& dir,
                                         const segment_header& header, std::string_view suffix,
                                         bool durable) {
  close();
  const std::string name = layout::file_name(header.id, suffix);
  const std::filesystem::path tmp = dir / (name + std::string(layout::tmp_suffix));
  const std::filesystem::path final_path = dir / name;
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return last_error();
  std::string bytes;
  encode_segment_header(header, bytes);
  std::error_code ec = write_all(fd, bytes, 0);
  if (!ec && durable && ::fdatasync(fd) != 0)
    ec = last_error();
  if (!ec)
    ec = publish_new(tmp, final_path);
  if (!ec && durable)
    ec = layout::sync_directory(dir);
  if (ec) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return ec;
  }
  fd_ = fd;
  id_ = header.id;
  path_ = final_path;
  written_ = flushed_ = bytes.size();
  opened_at_ = std::chrono::steady_clock::now();
  return {};
}

std::error_code segment_appender::append(std::string_view bytes) {
  if (auto ec = write_all(fd_, bytes, written_))
    return ec;
  written_ += bytes.size();
  return {};
}

std::error_code segment_appender::sync() {
  if (flushed_ == written_)
    return {};
  if (::fdatasync(fd_) != 0)
    return last_error();
  flushed_ = written_;
  return {};
}

std::error_code segment_appender::truncate(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
    return last_error();
  written_ = size;
  if (flushed_ > size)
    flushed_ = size;
  return {};
}

void segment_appender::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

}  // namespace sluice::buffer
