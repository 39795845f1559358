#include "sluice/buffer/record_format.hpp"

#include <cstring>

#include "sluice/buffer/crc32c.hpp"
#include "sluice/buffer/errc.hpp"

namespace sluice::buffer {
namespace {

constexpr char magic[4] = {'S', 'L', 'B', 'F'};
// Bits 0-3: the optional strings below; bit 4: an event time (8 bytes after them). Records
// without an event time are byte for byte what builds before it wrote.
constexpr std::uint8_t known_flags = 0x1f;
constexpr std::uint8_t event_time_flag = 0x10;

void put_u8(std::string& out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_str(std::string& out, std::string_view s) {
  put_le(out, s.size(), 4);
  out.append(s);
}

std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}

void store_le32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Bounds-checked cursor over a body: every read either succeeds or marks the body malformed.
class body_reader {
 public:
  explicit body_reader(std::string_view body) : body_(body) {}

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == body_.size(); }

  std::uint64_t le(int bytes) {
    if (!take(bytes))
      return 0;
    return get_le(body_.data() + pos_ - bytes, bytes);
  }

  std::string str() {
    const auto n = le(4);
    if (!ok_ || n > body_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string s(body_.substr(pos_, n));
    pos_ += n;
    return s;
  }

  void bytes(void* out, std::size_t n) {
    if (take(n))
      std::memcpy(out, body_.data() + pos_ - n, n);
  }

 private:
  bool take(std::size_t n) {
    if (!ok_ || n > body_.size() - pos_) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }

  std::string_view body_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

std::size_t body_size(const message& m) noexcept {
  std::size_t n = 16 + 8 + 4 + m.queue.size() + 4 + m.partition.size() + 1 + 4 + m.payload.size();
  for (const auto* opt : {&m.namespace_, &m.task, &m.trace_id, &m.transaction_id}) {
    if (*opt)
      n += 4 + (*opt)->size();
  }
  if (m.event_us)
    n += 8;
  return n;
}

void put_message_body(const message& m, std::string& out) {
  out.append(reinterpret_cast<const char*>(m.id.bytes.data()), m.id.bytes.size());
  put_le(out, static_cast<std::uint64_t>(m.created_ms), 8);
  put_str(out, m.queue);
  put_str(out, m.partition);
  std::uint8_t flags = 0;
  if (m.namespace_)
    flags |= 1;
  if (m.task)
    flags |= 2;
  if (m.trace_id)
    flags |= 4;
  if (m.transaction_id)
    flags |= 8;
  if (m.event_us)
    flags |= event_time_flag;
  put_u8(out, flags);
  for (const auto* opt : {&m.namespace_, &m.task, &m.trace_id, &m.transaction_id}) {
    if (*opt)
      put_str(out, **opt);
  }
  if (m.event_us)
    put_le(out, static_cast<std::uint64_t>(*m.event_us), 8);
  put_str(out, m.payload);
}

// Reserves the frame header, lets `body` append, then fills in length and CRC.
template <typename Body>
void frame(record_kind kind, std::size_t expected_body, std::string& out, Body&& body) {
  const std::size_t start = out.size();
  out.reserve(start + record_header_size + expected_body);
  out.append(8, '\0');
  put_u8(out, record_version);
  put_u8(out, static_cast<std::uint8_t>(kind));
  put_le(out, 0, 2);
  body(out);
  const auto n = static_cast<std::uint32_t>(out.size() - start - record_header_size);
  char* p = out.data() + start;
  store_le32(p, n);
  std::uint32_t crc = crc32c(p, 4);
  crc = crc32c(p + 8, record_header_size - 8 + n, crc);
  store_le32(p + 4, crc);
}

bool read_message_body(body_reader& r, message& m) {
  r.bytes(m.id.bytes.data(), m.id.bytes.size());
  m.created_ms = static_cast<std::int64_t>(r.le(8));
  m.queue = r.str();
  m.partition = r.str();
  const auto flags = static_cast<std::uint8_t>(r.le(1));
  if (!r.ok() || (flags & ~known_flags) != 0)
    return false;
  int bit = 0;
  for (auto* opt : {&m.namespace_, &m.task, &m.trace_id, &m.transaction_id}) {
    if (flags & (1u << bit++)) {
      *opt = r.str();
    } else {
      opt->reset();
    }
  }
  if (flags & event_time_flag) {
    m.event_us = static_cast<std::int64_t>(r.le(8));
  } else {
    m.event_us.reset();
  }
  m.payload = r.str();
  return r.ok() && r.at_end();
}

}  // namespace

void encode_segment_header(const segment_header& header, std::string& out) {
  const std::size_t start = out.size();
  out.append(magic, sizeof magic);
  put_le(out, format_version, 2);
  put_le(out, static_cast<std::uint16_t>(header.kind), 2);
  put_le(out, header.id, 8);
  put_le(out, static_cast<std::uint64_t>(header.created_ms), 8);
  put_le(out, 0, 4);
  put_le(out, crc32c(out.data() + start, 28), 4);
}

std::optional<segment_header> decode_segment_header(std::string_view bytes, std::error_code& ec) {
  ec = errc::bad_segment_header;
  if (bytes.size() < segment_header_size)
    return std::nullopt;
  const char* p = bytes.data();
  if (std::memcmp(p, magic, sizeof magic) != 0)
    return std::nullopt;
  if (get_le(p + 28, 4) != crc32c(p, 28))
    return std::nullopt;
  if (get_le(p + 4, 2) != format_version)
    return std::nullopt;
  const auto kind = get_le(p + 6, 2);
  if (kind != static_cast<std::uint16_t>(file_kind::log_segment) &&
      kind != static_cast<std::uint16_t>(file_kind::failed_records)) {
    return std::nullopt;
  }
  ec.clear();
  return segment_header{static_cast<file_kind>(kind), get_le(p + 8, 8),
                        static_cast<std::int64_t>(get_le(p + 16, 8))};
}

std::size_t encoded_size(const message& m) noexcept {
  return record_header_size + body_size(m);
}

void encode_message_record(const message& m, std::string& out) {
  frame(record_kind::message, body_size(m), out, [&](std::string& o) { put_message_body(m, o); });
}

void encode_failed_record(const message& m, std::int64_t failed_ms, std::string_view reason,
                          std::string& out) {
  frame(record_kind::failed_message, 8 + 4 + reason.size() + body_size(m), out,
        [&](std::string& o) {
          put_le(o, static_cast<std::uint64_t>(failed_ms), 8);
          put_str(o, reason);
          put_message_body(m, o);
        });
}

std::optional<record_frame> decode_record_frame(std::string_view bytes, std::error_code& ec) {
  ec.clear();
  if (bytes.size() < record_header_size) {
    ec = errc::torn_record;
    return std::nullopt;
  }
  const char* p = bytes.data();
  record_frame f;
  f.body_size = static_cast<std::uint32_t>(get_le(p, 4));
  f.crc = static_cast<std::uint32_t>(get_le(p + 4, 4));
  f.version = static_cast<std::uint8_t>(p[8]);
  const auto kind = static_cast<std::uint8_t>(p[9]);
  if (f.body_size == 0 || f.body_size > max_record_body) {
    ec = errc::bad_record_length;
    return std::nullopt;
  }
  // A frame header is not covered by the CRC until the body has been read, so these checks only
  // reject what can never be valid; a corrupted header is otherwise caught by the CRC.
  if (f.version != record_version ||
      (kind != static_cast<std::uint8_t>(record_kind::message) &&
       kind != static_cast<std::uint8_t>(record_kind::failed_message))) {
    ec = errc::malformed_record;
    return std::nullopt;
  }
  f.kind = static_cast<record_kind>(kind);
  return f;
}

bool check_record_crc(std::string_view record, std::error_code& ec) {
  ec.clear();
  if (record.size() < record_header_size) {
    ec = errc::torn_record;
    return false;
  }
  const char* p = record.data();
  std::uint32_t crc = crc32c(p, 4);
  crc = crc32c(p + 8, record.size() - 8, crc);
  if (crc != static_cast<std::uint32_t>(get_le(p + 4, 4))) {
    ec = errc::crc_mismatch;
    return false;
  }
  return true;
}

std::optional<message> decode_message_body(std::string_view body, std::error_code& ec) {
  body_reader r(body);
  message m;
  if (!read_message_body(r, m)) {
    ec = errc::malformed_record;
    return std::nullopt;
  }
  ec.clear();
  return m;
}

std::optional<failed_message> decode_failed_body(std::string_view body, std::error_code& ec) {
  body_reader r(body);
  failed_message f;
  f.failed_ms = static_cast<std::int64_t>(r.le(8));
  f.reason = r.str();
  if (!r.ok() || !read_message_body(r, f.msg)) {
    ec = errc::malformed_record;
    return std::nullopt;
  }
  ec.clear();
  return f;
}

}  // namespace sluice::buffer
