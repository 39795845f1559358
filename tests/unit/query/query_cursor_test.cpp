#include "sluice/query/query_cursor.hpp"

#include <gtest/gtest.h>

namespace sluice::query {
namespace {

const std::string key = "0123456789abcdef0123456789abcdef";
const std::string fp = "messages&queue=orders&partition=&start=&end=&sort=asc";

message_position sample() {
  message_position p;
  p.event_us = 1'796'083'200'123'456;
  p.id = *uuid::parse("01890a5d-ac96-774b-bcce-b302099a8057");
  p.state = {1'234'567, true, 42};
  return p;
}

template <typename T>
http::cursor_error error_of(const std::variant<T, http::cursor_error>& v) {
  EXPECT_TRUE(std::holds_alternative<http::cursor_error>(v));
  return std::holds_alternative<http::cursor_error>(v) ? std::get<http::cursor_error>(v)
                                                       : http::cursor_error::malformed;
}

TEST(query_cursor, message_position_round_trips) {
  const auto text = encode_message_cursor(sample(), fp, key);
  const auto back = decode_message_cursor(text, fp, key);
  ASSERT_TRUE(std::holds_alternative<message_position>(back));
  const auto& p = std::get<message_position>(back);
  EXPECT_EQ(p.event_us, sample().event_us);
  EXPECT_EQ(p.id, sample().id);
  EXPECT_EQ(p.state.total, 1'234'567u);
  EXPECT_TRUE(p.state.total_is_estimate);
  EXPECT_EQ(p.state.page, 42u);
}

TEST(query_cursor, negative_times_round_trip) {
  auto p = sample();
  p.event_us = -1;
  const auto back = decode_message_cursor(encode_message_cursor(p, fp, key), fp, key);
  ASSERT_TRUE(std::holds_alternative<message_position>(back));
  EXPECT_EQ(std::get<message_position>(back).event_us, -1);
}

TEST(query_cursor, is_url_safe_text) {
  const auto text = encode_message_cursor(sample(), fp, key);
  EXPECT_EQ(
      text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
}

TEST(query_cursor, other_filters_are_told_apart_from_tampering) {
  const auto text = encode_message_cursor(sample(), fp, key);
  EXPECT_EQ(error_of(decode_message_cursor(text, fp + "x", key)),
            http::cursor_error::other_filters);
}

TEST(query_cursor, every_single_character_edit_is_refused) {
  const auto text = encode_message_cursor(sample(), fp, key);
  const std::string alphabet = "AQgw_-9z";
  for (std::size_t i = 0; i < text.size(); ++i) {
    for (const char c : alphabet) {
      if (text[i] == c)
        continue;
      std::string edited = text;
      edited[i] = c;
      const auto back = decode_message_cursor(edited, fp, key);
      EXPECT_TRUE(std::holds_alternative<http::cursor_error>(back)) << "position " << i;
    }
  }
}

TEST(query_cursor, a_cursor_rebuilt_with_a_valid_checksum_but_no_key_is_tampered) {
  // The outer layer's checksum is public: anyone can wrap any position in it. Only the MAC
  // tells a position this server made from one a client made.
  std::string position = "\x01";
  position += std::string(8 + 16 + 13, '\0');
  position += std::string(16, '\0');  // a guessed MAC
  const auto forged = http::encode_cursor(position, fp);
  EXPECT_EQ(error_of(decode_message_cursor(forged, fp, key)), http::cursor_error::tampered);
}

TEST(query_cursor, another_key_refuses_it) {
  const auto text = encode_message_cursor(sample(), fp, key);
  EXPECT_EQ(error_of(decode_message_cursor(text, fp, "another key, as long as the first")),
            http::cursor_error::tampered);
}

TEST(query_cursor, truncated_and_garbage_cursors_are_refused) {
  const auto text = encode_message_cursor(sample(), fp, key);
  for (std::size_t n = 0; n < text.size(); n += 3)
    EXPECT_TRUE(std::holds_alternative<http::cursor_error>(
        decode_message_cursor(text.substr(0, n), fp, key)))
        << n;
  EXPECT_EQ(error_of(decode_message_cursor("not a cursor!", fp, key)),
            http::cursor_error::malformed);
  EXPECT_EQ(error_of(decode_message_cursor(std::string(5000, 'A'), fp, key)),
            http::cursor_error::malformed);
}

TEST(query_cursor, kinds_do_not_stand_in_for_each_other) {
  const auto partitions = encode_partition_cursor({"dev-1", {10, false, 2}}, fp, key);
  EXPECT_EQ(error_of(decode_message_cursor(partitions, fp, key)), http::cursor_error::malformed);
  const auto queues = encode_queue_cursor("orders", fp, key);
  EXPECT_EQ(error_of(decode_partition_cursor(queues, fp, key)), http::cursor_error::malformed);
}

TEST(query_cursor, partition_and_queue_positions_round_trip) {
  const auto p = decode_partition_cursor(
      encode_partition_cursor({"dév 1/ü", {7, false, 3}}, fp, key), fp, key);
  ASSERT_TRUE(std::holds_alternative<partition_position>(p));
  EXPECT_EQ(std::get<partition_position>(p).last, "dév 1/ü");
  EXPECT_EQ(std::get<partition_position>(p).state.total, 7u);
  EXPECT_EQ(std::get<partition_position>(p).state.page, 3u);
  const auto q =
      decode_queue_cursor(encode_queue_cursor("orders.eu", "queues", key), "queues", key);
  ASSERT_TRUE(std::holds_alternative<std::string>(q));
  EXPECT_EQ(std::get<std::string>(q), "orders.eu");
}

}  // namespace
}  // namespace sluice::query
