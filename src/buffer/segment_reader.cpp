#include "sluice/buffer/segment_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include "sluice/buffer/errc.hpp"

namespace sluice::buffer {
namespace {

constexpr std::size_t chunk_size = 1 << 20;

}  // namespace

segment_reader::segment_reader(segment_reader&& other) noexcept {
  *this = std::move(other);
}

segment_reader& segment_reader::operator=(segment_reader&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    header_ = other.header_;
    file_size_ = other.file_size_;
    offset_ = other.offset_;
    limit_ = other.limit_;
    buf_ = std::move(other.buf_);
    buf_offset_ = other.buf_offset_;
  }
  return *this;
}

segment_reader::~segment_reader() {
  close();
}

void segment_reader::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
  buf_.clear();
  buf_offset_ = 0;
}

std::error_code segment_reader::open_headerless(const std::filesystem::path& path) {
  close();
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0)
    return {errno, std::system_category()};
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    std::error_code ec{errno, std::system_category()};
    close();
    return ec;
  }
  file_size_ = static_cast<std::uint64_t>(st.st_size);
  limit_ = file_size_;
  header_ = {};
  offset_ = 0;
  return {};
}

std::error_code segment_reader::open(const std::filesystem::path& path) {
  if (auto ec = open_headerless(path))
    return ec;
  std::error_code ec;
  if (!fill(0, segment_header_size, ec)) {
    close();
    return ec ? ec : make_error_code(errc::bad_segment_header);
  }
  auto header = decode_segment_header(std::string_view(buf_).substr(0, segment_header_size), ec);
  if (!header) {
    close();
    return ec;
  }
  header_ = *header;
  offset_ = segment_header_size;
  return {};
}

bool segment_reader::fill(std::uint64_t offset, std::size_t size, std::error_code& ec) {
  ec.clear();
  if (offset >= buf_offset_ && offset + size <= buf_offset_ + buf_.size())
    return true;
  // Never buffer bytes past the limit: beyond it a writer may be mid-append, and a stale copy of
  // a half-written record would later look corrupt.
  if (offset >= limit_ || size > limit_ - offset)
    return false;
  // Keep what is already buffered past `offset` and read the rest behind it.
  std::size_t keep = 0;
  if (offset >= buf_offset_ && offset < buf_offset_ + buf_.size()) {
    keep = buf_.size() - static_cast<std::size_t>(offset - buf_offset_);
    std::memmove(buf_.data(), buf_.data() + (offset - buf_offset_), keep);
  }
  const std::size_t want = static_cast<std::size_t>(
      std::min<std::uint64_t>(std::max(size, chunk_size), limit_ - offset));
  buf_.resize(want);
  buf_offset_ = offset;
  std::size_t have = keep;
  while (have < size) {
    const ssize_t n =
        ::pread(fd_, buf_.data() + have, want - have, static_cast<off_t>(offset + have));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      ec = {errno, std::system_category()};
      buf_.resize(have);
      return false;
    }
    if (n == 0)
      break;
    have += static_cast<std::size_t>(n);
  }
  buf_.resize(have);
  return have >= size;
}

bool segment_reader::next(record_view& out, std::error_code& ec) {
  ec.clear();
  if (offset_ >= limit_)
    return false;
  if (limit_ - offset_ < record_header_size) {
    ec = errc::torn_record;
    return false;
  }
  if (!fill(offset_, record_header_size, ec)) {
    if (!ec)
      ec = errc::torn_record;
    return false;
  }
  const auto frame = decode_record_frame(
      std::string_view(buf_).substr(offset_ - buf_offset_, record_header_size), ec);
  if (!frame)
    return false;
  const std::uint64_t size = record_header_size + std::uint64_t{frame->body_size};
  if (size > limit_ - offset_) {
    // An interrupted append, or a corrupted length: without the bytes the CRC cannot tell which.
    ec = errc::torn_record;
    return false;
  }
  if (!fill(offset_, static_cast<std::size_t>(size), ec)) {
    if (!ec)
      ec = errc::torn_record;
    return false;
  }
  const std::string_view record =
      std::string_view(buf_).substr(offset_ - buf_offset_, static_cast<std::size_t>(size));
  if (!check_record_crc(record, ec))
    return false;
  out.offset = offset_;
  out.size = static_cast<std::uint32_t>(size);
  out.kind = frame->kind;
  out.body = record.substr(record_header_size);
  offset_ += size;
  return true;
}

std::optional<message> segment_reader::next_message(record_view& out, std::error_code& ec) {
  if (!next(out, ec))
    return std::nullopt;
  std::optional<message> m;
  if (out.kind == record_kind::message)
    m = decode_message_body(out.body, ec);
  if (!m) {
    if (!ec)
      ec = errc::malformed_record;
    offset_ = out.offset;
  }
  return m;
}

std::optional<std::int64_t> segment_reader::peek_created_ms() {
  const std::size_t need = record_header_size + created_ms_body_offset + 8;
  if (offset_ >= limit_ || limit_ - offset_ < need)
    return std::nullopt;
  std::error_code ec;
  if (!fill(offset_, need, ec))
    return std::nullopt;
  const char* p =
      buf_.data() + (offset_ - buf_offset_) + record_header_size + created_ms_body_offset;
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = v << 8 | static_cast<unsigned char>(p[i]);
  return static_cast<std::int64_t>(v);
}

bool segment_reader::find_next_record(std::uint64_t bad, std::optional<std::uint64_t>& found,
                                      std::error_code& ec) {
  found.reset();
  ec.clear();
  for (std::uint64_t p = bad + 1; p < limit_ && limit_ - p >= record_header_size; ++p) {
    if (!fill(p, record_header_size, ec))
      return !ec;
    const char* h = buf_.data() + (p - buf_offset_);
    if (h[10] != 0 || h[11] != 0)
      continue;
    std::error_code frame_ec;
    const auto frame = decode_record_frame(std::string_view(h, record_header_size), frame_ec);
    if (!frame)
      continue;
    const std::uint64_t size = record_header_size + std::uint64_t{frame->body_size};
    if (size > limit_ - p)
      continue;
    if (!fill(p, static_cast<std::size_t>(size), ec))
      return !ec;
    std::error_code crc_ec;
    if (check_record_crc(std::string_view(buf_).substr(p - buf_offset_, size), crc_ec)) {
      found = p;
      return true;
    }
  }
  return true;
}

std::uint64_t segment_reader::count_frames(std::uint64_t begin, std::uint64_t end) {
  std::uint64_t n = 0;
  std::uint64_t p = begin;
  while (p < end) {
    ++n;
    std::error_code ec;
    if (end - p < record_header_size || !fill(p, record_header_size, ec))
      break;
    const auto frame =
        decode_record_frame(std::string_view(buf_).substr(p - buf_offset_, record_header_size), ec);
    if (!frame || frame->body_size > end - p - record_header_size)
      break;
    p += record_header_size + frame->body_size;
  }
  return n;
}

}  // namespace sluice::buffer
