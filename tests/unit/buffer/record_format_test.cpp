#include "sluice/buffer/record_format.hpp"

#include "sluice/buffer/crc32c.hpp"
#include "sluice/buffer/errc.hpp"

#include <gtest/gtest.h>

#include "buffer_test_support.hpp"

namespace sluice::buffer {
namespace {

using test::make_message;
using test::same_message;

std::uint32_t le32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}

TEST(record_format, message_round_trips_with_every_optional_combination) {
  for (int n = 0; n < 60; ++n) {
    const message m = make_message(n, n % 7 == 0 ? "" : "queue-" + std::to_string(n), n);
    std::string bytes;
    encode_message_record(m, bytes);
    ASSERT_EQ(bytes.size(), encoded_size(m));

    std::error_code ec;
    const auto frame = decode_record_frame(bytes, ec);
    ASSERT_TRUE(frame) << ec.message();
    EXPECT_EQ(frame->body_size, bytes.size() - record_header_size);
    EXPECT_EQ(frame->kind, record_kind::message);
    ASSERT_TRUE(check_record_crc(bytes, ec));
    const auto decoded =
        decode_message_body(std::string_view(bytes).substr(record_header_size), ec);
    ASSERT_TRUE(decoded) << ec.message();
    EXPECT_TRUE(same_message(*decoded, m)) << n;
  }
}

TEST(record_format, empty_strings_and_empty_optionals_are_distinct) {
  message m = make_message(1);
  m.namespace_ = "";
  m.task.reset();
  m.payload = "";
  std::string bytes;
  encode_message_record(m, bytes);
  std::error_code ec;
  const auto decoded = decode_message_body(std::string_view(bytes).substr(record_header_size), ec);
  ASSERT_TRUE(decoded);
  ASSERT_TRUE(decoded->namespace_.has_value());
  EXPECT_EQ(*decoded->namespace_, "");
  EXPECT_FALSE(decoded->task.has_value());
}

TEST(record_format, frame_layout_is_as_documented) {
  const message m = make_message(4);
  std::string bytes;
  encode_message_record(m, bytes);
  EXPECT_EQ(le32(bytes, 0), bytes.size() - 12);
  std::uint32_t crc = crc32c(bytes.data(), 4);
  crc = crc32c(bytes.data() + 8, bytes.size() - 8, crc);
  EXPECT_EQ(le32(bytes, 4), crc);
  EXPECT_EQ(bytes[8], 1) << "record version";
  EXPECT_EQ(bytes[9], 1) << "kind message";
  EXPECT_EQ(bytes[10], 0);
  EXPECT_EQ(bytes[11], 0);
  EXPECT_EQ(std::memcmp(bytes.data() + 12, m.id.bytes.data(), 16), 0);
  std::int64_t created = 0;
  for (int i = 7; i >= 0; --i)
    created = created << 8 | static_cast<unsigned char>(bytes[28 + i]);
  EXPECT_EQ(created, m.created_ms) << "created_ms at body offset 16";
}

TEST(record_format, every_flipped_byte_is_detected) {
  const message m = make_message(9);
  std::string good;
  encode_message_record(m, good);
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    std::error_code ec;
    const auto frame = decode_record_frame(bad, ec);
    const bool body_fits = frame && frame->body_size + record_header_size <= bad.size();
    const bool crc_ok =
        body_fits && check_record_crc(std::string_view(bad).substr(0, frame->body_size + 12), ec);
    EXPECT_FALSE(crc_ok) << "flip at byte " << i << " went unnoticed";
  }
}

TEST(record_format, frame_rejects_bad_lengths_and_unknown_versions) {
  std::string bytes;
  encode_message_record(make_message(1), bytes);
  std::error_code ec;
  EXPECT_FALSE(decode_record_frame(std::string_view(bytes).substr(0, 11), ec));
  EXPECT_EQ(ec, errc::torn_record);

  std::string zero = bytes;
  zero[0] = zero[1] = zero[2] = zero[3] = 0;
  EXPECT_FALSE(decode_record_frame(zero, ec));
  EXPECT_EQ(ec, errc::bad_record_length);

  std::string huge = bytes;
  huge[3] = '\x7f';
  EXPECT_FALSE(decode_record_frame(huge, ec));
  EXPECT_EQ(ec, errc::bad_record_length);

  std::string version = bytes;
  version[8] = 2;
  EXPECT_FALSE(decode_record_frame(version, ec));
  EXPECT_EQ(ec, errc::malformed_record);
}

TEST(record_format, body_decoder_rejects_truncation_trailing_bytes_and_unknown_flags) {
  std::string bytes;
  encode_message_record(make_message(12), bytes);
  const std::string body = bytes.substr(record_header_size);
  std::error_code ec;
  for (std::size_t cut = 0; cut < body.size(); ++cut) {
    EXPECT_FALSE(decode_message_body(std::string_view(body).substr(0, cut), ec)) << cut;
    EXPECT_EQ(ec, errc::malformed_record);
  }
  EXPECT_FALSE(decode_message_body(body + "x", ec));
  message plain = make_message(1);  // no optional fields: the flags byte follows partition
  std::string plain_bytes;
  encode_message_record(plain, plain_bytes);
  std::string plain_body = plain_bytes.substr(record_header_size);
  const std::size_t flags_at = 16 + 8 + 4 + plain.queue.size() + 4 + plain.partition.size();
  plain_body[flags_at] = static_cast<char>(0x20);
  EXPECT_FALSE(decode_message_body(plain_body, ec));
}

TEST(record_format, failed_record_round_trips) {
  const message m = make_message(20);
  std::string bytes;
  encode_failed_record(m, 1'700'000'111'000, "violates check constraint", bytes);
  std::error_code ec;
  const auto frame = decode_record_frame(bytes, ec);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->kind, record_kind::failed_message);
  ASSERT_TRUE(check_record_crc(bytes, ec));
  const auto f = decode_failed_body(std::string_view(bytes).substr(record_header_size), ec);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->failed_ms, 1'700'000'111'000);
  EXPECT_EQ(f->reason, "violates check constraint");
  EXPECT_TRUE(same_message(f->msg, m));
}

TEST(record_format, segment_header_round_trips_and_rejects_damage) {
  std::string bytes;
  encode_segment_header({file_kind::log_segment, 42, 1'700'000'000'000}, bytes);
  ASSERT_EQ(bytes.size(), segment_header_size);
  EXPECT_EQ(bytes.substr(0, 4), "SLBF");
  std::error_code ec;
  const auto h = decode_segment_header(bytes, ec);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->id, 42u);
  EXPECT_EQ(h->kind, file_kind::log_segment);
  EXPECT_EQ(h->created_ms, 1'700'000'000'000);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 1);
    EXPECT_FALSE(decode_segment_header(bad, ec)) << i;
    EXPECT_EQ(ec, errc::bad_segment_header);
  }
  EXPECT_FALSE(decode_segment_header(std::string_view(bytes).substr(0, 31), ec));
}

}  // namespace
}  // namespace sluice::buffer
