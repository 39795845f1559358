#include "sluice/buffer/log_layout.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

namespace sluice::buffer::layout {

namespace fs = std::filesystem;

std::string file_name(std::uint64_t id, std::string_view suffix) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(id));
  std::string name(digits);
  name.append(suffix);
  return name;
}

std::optional<std::uint64_t> parse_file_name(std::string_view name, std::string_view suffix) {
  if (name.size() != 20 + suffix.size() || !name.ends_with(suffix))
    return std::nullopt;
  std::uint64_t id = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9')
      return std::nullopt;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (id > (UINT64_MAX - digit) / 10)
      return std::nullopt;
    id = id * 10 + digit;
  }
  return id;
}

std::vector<std::pair<std::uint64_t, fs::path>> list_files(const fs::path& dir,
                                                           std::string_view suffix,
                                                           std::error_code& ec) {
  std::vector<std::pair<std::uint64_t, fs::path>> out;
  ec.clear();
  if (!fs::exists(dir, ec))
    return out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec))
      continue;
    if (auto id = parse_file_name(it->path().filename().string(), suffix)) {
      out.emplace_back(*id, it->path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool is_log_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / ack_file, ec) || fs::exists(dir / lock_file, ec) ||
      fs::is_directory(dir / failed_dir, ec)) {
    return true;
  }
  return !list_files(dir, segment_suffix, ec).empty();
}

std::error_code sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return {errno, std::system_category()};
  std::error_code ec;
  if (::fsync(fd) != 0)
    ec = {errno, std::system_category()};
  ::close(fd);
  return ec;
}

fs::path quarantine_path(const fs::path& log_dir, std::string_view name) {
  const fs::path dir = log_dir / quarantine_dir;
  std::error_code ec;
  fs::path candidate = dir / name;
  for (int n = 1; fs::exists(candidate, ec); ++n) {
    std::string numbered(name);
    numbered.push_back('.');
    numbered.append(std::to_string(n));
    candidate = dir / numbered;
  }
  return candidate;
}

std::error_code quarantine_file(const fs::path& log_dir, const fs::path& file) {
  std::error_code ec;
  fs::create_directories(log_dir / quarantine_dir, ec);
  if (ec)
    return ec;
  fs::rename(file, quarantine_path(log_dir, file.filename().string()), ec);
  if (ec)
    return ec;
  return sync_directory(log_dir);
}

std::uint64_t copy_to_quarantine(const fs::path& log_dir, const fs::path& file, std::uint64_t begin,
                                 std::uint64_t end, std::string_view suffix, std::error_code& ec) {
  const auto last_error = [] { return std::error_code{errno, std::system_category()}; };
  ec.clear();
  fs::create_directories(log_dir / quarantine_dir, ec);
  if (ec)
    return 0;
  std::string name = file.filename().string() + "." + std::to_string(begin) + ".";
  name.append(suffix);
  // Recovery meets the same corrupt range at every start: one copy is enough.
  std::error_code size_ec;
  if (fs::file_size(log_dir / quarantine_dir / name, size_ec) == end - begin && !size_ec)
    return 0;
  const fs::path target = quarantine_path(log_dir, name);
  const int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    ec = last_error();
    return 0;
  }
  const int out = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    ec = last_error();
    ::close(in);
    return 0;
  }
  std::string buf(1 << 20, '\0');
  std::uint64_t at = begin;
  while (at < end) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - at));
    const ssize_t n = ::pread(in, buf.data(), want, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      ec = last_error();
      break;
    }
    if (n == 0)
      break;
    if (::write(out, buf.data(), static_cast<std::size_t>(n)) != n) {
      ec = last_error();
      break;
    }
    at += static_cast<std::uint64_t>(n);
  }
  if (!ec && ::fdatasync(out) != 0)
    ec = last_error();
  ::close(in);
  ::close(out);
  if (!ec)
    ec = sync_directory(log_dir / quarantine_dir);
  if (ec) {
    std::error_code rm;
    fs::remove(target, rm);
    return 0;
  }
  return at - begin;
}

}  // namespace sluice::buffer::layout
