#pragma once

// On-disk format of the file buffer, version 1. All integers are little-endian; "str" is a
// u32 byte count followed by that many bytes (no terminator).
//
// Segment file (log segments `NNNNNNNNNNNNNNNNNNNN.seg` and failed files `NNNN….failed`):
//
//   offset size  field
//   0      4     magic "SLBF" (0x53 0x4C 0x42 0x46)
//   4      2     format version = 1
//   6      2     file kind: 1 = log segment, 2 = failed records
//   8      8     segment id (u64), equal to the number in the file name
//   16     8     created_ms (i64): when the file was created, Unix epoch milliseconds
//   24     4     reserved, 0
//   28     4     CRC32C of bytes [0, 28)
//   32     ...   records, back to back, until the end of the file
//
// Record (12-byte frame header + body):
//
//   offset size  field
//   0      4     body_size N (u32), 1 <= N <= max_record_body
//   4      4     CRC32C of bytes [0, 4) followed by bytes [8, 12 + N): the length is covered,
//                so a corrupted length cannot pair with a matching checksum by accident
//   8      1     record version = 1
//   9      1     record kind: 1 = message, 2 = failed message
//   10     2     reserved, 0
//   12     N     body
//
// Body of kind 1 (message):
//
//   size  field
//   16    id: the uuid's 16 bytes in RFC 9562 order
//   8     created_ms (i64)
//   str   queue
//   str   partition
//   1     presence flags: bit 0 namespace, bit 1 task, bit 2 trace_id, bit 3 transaction_id;
//         other bits 0
//   str   namespace       (only if bit 0)
//   str   task            (only if bit 1)
//   str   trace_id        (only if bit 2)
//   str   transaction_id  (only if bit 3)
//   str   payload: the JSON text exactly as the client sent it
//
// The body must end exactly after the payload. created_ms sits at body offset 16 so a reader
// can peek at it without decoding the record.
//
// Body of kind 2 (failed message), written to failed/ only:
//
//   size  field
//   8     failed_ms (i64): when PostgreSQL rejected it
//   str   reason
//   ...   a kind-1 body
//
// A file ends at its last complete record: there is no trailer and no padding.
//
// Finding records again after a bad one. A record is bad when its length is out of bounds, its
// bytes run past the end of the file (or the committed end), its CRC does not match or its
// body does not decode. There is no sync marker, and a bad record's length field cannot be
// trusted (the CRC covers it, so a mismatch cannot tell a damaged length from a damaged body).
// So a reader resyncs by trying every byte offset after the bad record's start until a frame
// passes every check: record version 1, kind 1 or 2, reserved bytes 0, a length within bounds
// and the limit, and a CRC32C over its length and bytes that matches. A random byte sequence
// passes the frame checks rarely and the CRC with probability 2^-32, so a resync on garbage is
// not a realistic risk; taking the first offset that passes (not the bad record's stated end)
// never skips a valid record. The rule, in recovery and replay alike:
// - a valid record after the bad one: the bytes between are a corrupt range; they are copied to
//   quarantine/<segment>.<offset>.bad, counted, and skipped, and the records after them are
//   kept. Corruption in the middle of any segment (sealed or not) costs only that range.
// - no valid record after it: at recovery the bad record starts a torn tail (an interrupted
//   append: the normal end of the newest segment after a crash), copied to
//   quarantine/<segment>.<offset>.tail and cut off; during replay (below the committed end,
//   so the bytes were written whole) it is a corrupt range up to the committed end. A short
//   read below the committed end means the file was cut behind the log's back: corruption.
// Only such failed checks on bytes actually read prove corruption; an I/O error never does
// (errc.hpp: proves_corruption).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "sluice/core/message.hpp"

namespace sluice::buffer {

inline constexpr std::uint16_t format_version = 1;
inline constexpr std::size_t segment_header_size = 32;
inline constexpr std::size_t record_header_size = 12;
inline constexpr std::uint8_t record_version = 1;
// Far above any HTTP body sluice accepts; bounds what recovery allocates for a garbage length.
inline constexpr std::uint32_t max_record_body = 64u << 20;
inline constexpr std::size_t created_ms_body_offset = 16;

enum class file_kind : std::uint16_t { log_segment = 1, failed_records = 2 };
enum class record_kind : std::uint8_t { message = 1, failed_message = 2 };

struct segment_header {
  file_kind kind = file_kind::log_segment;
  std::uint64_t id = 0;
  std::int64_t created_ms = 0;
};

void encode_segment_header(const segment_header& header, std::string& out);
// Fails with errc::bad_segment_header (short input, magic, version, kind or CRC wrong).
std::optional<segment_header> decode_segment_header(std::string_view bytes, std::error_code& ec);

// The framed size of a kind-1 record for `m`, without encoding it.
std::size_t encoded_size(const message& m) noexcept;
// Appends one framed record to `out`.
void encode_message_record(const message& m, std::string& out);
void encode_failed_record(const message& m, std::int64_t failed_ms, std::string_view reason,
                          std::string& out);

struct record_frame {
  std::uint32_t body_size = 0;
  std::uint32_t crc = 0;
  std::uint8_t version = 0;
  record_kind kind = record_kind::message;
};

// Reads the 12-byte frame header (needs at least record_header_size bytes). Fails with
// errc::bad_record_length or errc::malformed_record (unknown version or kind).
std::optional<record_frame> decode_record_frame(std::string_view bytes, std::error_code& ec);
// `record` is the whole record (header + body). Fails with errc::crc_mismatch.
bool check_record_crc(std::string_view record, std::error_code& ec);

struct failed_message {
  message msg;
  std::int64_t failed_ms = 0;
  std::string reason;
};

// Decode a body (without the frame header). Fail with errc::malformed_record.
std::optional<message> decode_message_body(std::string_view body, std::error_code& ec);
std::optional<failed_message> decode_failed_body(std::string_view body, std::error_code& ec);

}  // namespace sluice::buffer
