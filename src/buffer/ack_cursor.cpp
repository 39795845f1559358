#include "sluice/buffer/ack_cursor.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "sluice/buffer/crc32c.hpp"
#include "sluice/buffer/log_layout.hpp"

namespace sluice::buffer {
namespace {

constexpr char magic[4] = {'S', 'L', 'A', 'K'};
constexpr std::uint32_t version = 1;

void store_le(unsigned char* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    p[i] = static_cast<unsigned char>((v >> (8 * i)) & 0xff);
}

std::uint64_t load_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = v << 8 | p[i];
  return v;
}

std::array<unsigned char, ack_file_size> encode(const record_position& pos) {
  std::array<unsigned char, ack_file_size> b{};
  std::memcpy(b.data(), magic, 4);
  store_le(b.data() + 4, version, 4);
  store_le(b.data() + 8, pos.segment, 8);
  store_le(b.data() + 16, pos.offset, 8);
  store_le(b.data() + 24, crc32c(b.data(), 24), 4);
  return b;
}

}  // namespace

std::optional<record_position> load_ack_cursor(const std::filesystem::path& dir) {
  const auto path = dir / layout::ack_file;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::array<unsigned char, ack_file_size> b{};
  const ssize_t n = ::pread(fd, b.data(), b.size(), 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(b.size()))
    return std::nullopt;
  if (std::memcmp(b.data(), magic, 4) != 0 || load_le(b.data() + 4, 4) != version ||
      load_le(b.data() + 24, 4) != crc32c(b.data(), 24)) {
    return std::nullopt;
  }
  return record_position{load_le(b.data() + 8, 8), load_le(b.data() + 16, 8)};
}

ack_cursor_file::~ack_cursor_file() {
  close();
}

std::error_code ack_cursor_file::open(const std::filesystem::path& dir) {
  close();
  const auto path = dir / layout::ack_file;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    return {errno, std::system_category()};
  return {};
}

std::error_code ack_cursor_file::store(const record_position& position) {
  const auto b = encode(position);
  if (::pwrite(fd_, b.data(), b.size(), 0) != static_cast<ssize_t>(b.size())) {
    return {errno, std::system_category()};
  }
  return {};
}

void ack_cursor_file::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

}  // namespace sluice::buffer
