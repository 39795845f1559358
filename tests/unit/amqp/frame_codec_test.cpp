#include "sluice/amqp/frame_codec.hpp"

#include <cstring>
#include <limits>
#include <vector>

#include "sluice/amqp/error.hpp"

#include <gtest/gtest.h>

namespace sluice::amqp {
namespace {

// What a test keeps of a decoded frame (the decoder's memory is recycled after each frame).
struct seen_frame {
  std::uint8_t type = 0;
  std::uint16_t channel = 0;
  amqp_method_number_t method = 0;
  std::string text;  // queue name / body fragment, depending on the frame
  field_table table;
  std::uint64_t body_size = 0;
  message_properties properties;
};

std::vector<seen_frame> decode_all(frame_decoder& decoder, const std::string& wire,
                                   std::size_t chunk = std::numeric_limits<std::size_t>::max(),
                                   std::error_code* error = nullptr) {
  std::vector<seen_frame> frames;
  for (std::size_t at = 0; at < wire.size(); at += chunk) {
    const std::size_t n = std::min(chunk, wire.size() - at);
    const auto ec = decoder.feed(
        reinterpret_cast<const std::uint8_t*>(wire.data() + at), n, [&](const amqp_frame_t& f) {
          seen_frame s;
          s.type = f.frame_type;
          s.channel = f.channel;
          if (f.frame_type == AMQP_FRAME_METHOD) {
            s.method = f.payload.method.id;
            if (s.method == AMQP_QUEUE_DECLARE_METHOD) {
              const auto* d = static_cast<const amqp_queue_declare_t*>(f.payload.method.decoded);
              s.text = to_string(d->queue);
              s.table = from_amqp_table(d->arguments);
            }
          } else if (f.frame_type == AMQP_FRAME_HEADER) {
            s.body_size = f.payload.properties.body_size;
            s.properties = from_amqp_properties(
                *static_cast<const amqp_basic_properties_t*>(f.payload.properties.decoded));
          } else if (f.frame_type == AMQP_FRAME_BODY) {
            s.text = to_string(f.payload.body_fragment);
          }
          frames.push_back(std::move(s));
          return true;
        });
    if (ec) {
      if (error != nullptr) {
        *error = ec;
      }
      break;
    }
  }
  return frames;
}

std::uint32_t read32(const std::string& s, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + 3]));
}

TEST(amqp_frame_codec, protocol_header_is_amqp_0_9_1) {
  EXPECT_EQ(protocol_header, std::string_view("AMQP\x00\x00\x09\x01", 8));
}

TEST(amqp_frame_codec, method_frame_layout) {
  frame_encoder encoder;
  std::string out = "x";  // frames append after whatever is queued
  amqp_basic_qos_t qos{0, 250, 0};
  ASSERT_FALSE(encoder.append_method(out, 7, AMQP_BASIC_QOS_METHOD, &qos));
  ASSERT_EQ(out.size(), 1 + 7 + 4 + 4 + 2 + 1 + 1);  // header, method id, size, count, global, end
  EXPECT_EQ(out[1], AMQP_FRAME_METHOD);
  EXPECT_EQ(out[2], 0);
  EXPECT_EQ(out[3], 7);
  EXPECT_EQ(read32(out, 4), 11U);
  EXPECT_EQ(read32(out, 8), AMQP_BASIC_QOS_METHOD);
  EXPECT_EQ(static_cast<std::uint8_t>(out.back()), frame_end_octet);
}

TEST(amqp_frame_codec, heartbeat_frame_bytes) {
  std::string out;
  frame_encoder::append_heartbeat(out);
  EXPECT_EQ(out, std::string("\x08\x00\x00\x00\x00\x00\x00\xCE", 8));
  frame_decoder decoder;
  const auto frames = decode_all(decoder, out + out);
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[0].type, AMQP_FRAME_HEARTBEAT);
}

TEST(amqp_frame_codec, method_with_arguments_table_round_trips) {
  frame_encoder encoder;
  std::string out;
  const std::string name = "orders";
  const field_table arguments{{"x-queue-type", "quorum"},
                              {"x-message-ttl", std::int64_t{60000}},
                              {"x-max-length", std::int32_t{10}}};
  amqp_queue_declare_t declare{};
  declare.queue = to_amqp_bytes(name);
  declare.durable = 1;
  ASSERT_FALSE(encoder.append_method(out, 1, AMQP_QUEUE_DECLARE_METHOD, &declare,
                                     &declare.arguments, arguments));
  frame_decoder decoder;
  const auto frames = decode_all(decoder, out);
  ASSERT_EQ(frames.size(), 1U);
  EXPECT_EQ(frames[0].channel, 1);
  EXPECT_EQ(frames[0].method, AMQP_QUEUE_DECLARE_METHOD);
  EXPECT_EQ(frames[0].text, "orders");
  EXPECT_EQ(frames[0].table, arguments);
}

TEST(amqp_frame_codec, every_field_type_round_trips_through_headers) {
  field_table nested{{"inner", "v"}, {"n", std::int32_t{-5}}};
  field_table headers{
      {"void", field_value()},
      {"bool", true},
      {"i8", std::int8_t{-8}},
      {"u8", std::uint8_t{200}},
      {"i16", std::int16_t{-1600}},
      {"u16", std::uint16_t{65000}},
      {"i32", std::int32_t{-320000}},
      {"u32", std::uint32_t{4000000000U}},
      {"i64", std::int64_t{-6400000000000LL}},
      {"u64", std::uint64_t{18000000000000000000ULL}},
      {"f32", 1.5F},
      {"f64", 2.25},
      {"decimal", decimal{2, 31415}},
      {"string", std::string("h\xC3\xA9llo\0x", 8)},
      {"bytes", byte_array{std::string("\x00\x01\xFF", 3)}},
      {"timestamp", timestamp{1700000000}},
      {"array", field_array{field_value("a"), field_value(std::int32_t{1}), field_value(nested)}},
      {"table", nested},
  };
  message_properties props;
  props.headers = headers;
  frame_encoder encoder;
  std::string out;
  ASSERT_FALSE(encoder.append_content(out, 3, props, ""));
  frame_decoder decoder;
  const auto frames = decode_all(decoder, out);
  ASSERT_EQ(frames.size(), 1U);  // no body frame for an empty body
  ASSERT_TRUE(frames[0].properties.headers);
  EXPECT_EQ(*frames[0].properties.headers, headers);
}

TEST(amqp_frame_codec, content_splits_the_body_by_frame_max_and_reassembles) {
  message_properties props;
  props.content_type = "application/json";
  props.delivery_mode = delivery_mode_persistent;
  props.message_id = "0190f1d2-0000-7000-8000-000000000001";
  props.correlation_id = "corr-1";
  props.timestamp = 1700000000;
  props.reply_to = "amq.rabbitmq.reply-to";
  props.priority = 3;
  props.expiration = "60000";
  props.type = "push";
  props.app_id = "sluice";
  props.content_encoding = "identity";
  props.headers = field_table{{"x-partition", "Default"}};
  std::string body(10000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) {
    body[i] = static_cast<char>('a' + i % 26);
  }
  frame_encoder encoder(frame_min_size);
  std::string out;
  amqp_basic_publish_t publish{0, to_amqp_bytes("ex"), to_amqp_bytes("rk"), 1, 0};
  ASSERT_FALSE(encoder.append_method(out, 2, AMQP_BASIC_PUBLISH_METHOD, &publish));
  ASSERT_FALSE(encoder.append_content(out, 2, props, body));

  frame_decoder decoder;
  // Byte by byte: a frame split across reads must come out whole.
  const auto frames = decode_all(decoder, out, 1);
  const std::size_t max_payload = frame_min_size - frame_overhead;
  const std::size_t body_frames = (body.size() + max_payload - 1) / max_payload;
  ASSERT_EQ(frames.size(), 2 + body_frames);
  EXPECT_EQ(frames[0].method, AMQP_BASIC_PUBLISH_METHOD);
  EXPECT_EQ(frames[1].type, AMQP_FRAME_HEADER);
  EXPECT_EQ(frames[1].body_size, body.size());
  EXPECT_EQ(frames[1].properties, props);
  std::string reassembled;
  for (std::size_t i = 2; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].type, AMQP_FRAME_BODY);
    EXPECT_EQ(frames[i].channel, 2);
    EXPECT_LE(frames[i].text.size(), max_payload);
    reassembled += frames[i].text;
  }
  EXPECT_EQ(reassembled, body);
}

TEST(amqp_frame_codec, unset_properties_stay_unset) {
  frame_encoder encoder;
  std::string out;
  ASSERT_FALSE(encoder.append_content(out, 1, message_properties{}, "x"));
  frame_decoder decoder;
  const auto frames = decode_all(decoder, out);
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[0].properties, message_properties{});
  EXPECT_FALSE(frames[0].properties.headers);
  EXPECT_EQ(frames[1].text, "x");
}

TEST(amqp_frame_codec, decoder_needs_tune_for_frames_above_128k) {
  message_properties props;
  const std::string body(300000, 'b');
  frame_encoder encoder(1 << 20);
  std::string out;
  ASSERT_FALSE(encoder.append_content(out, 1, props, body));

  frame_decoder untuned;
  std::error_code error;
  decode_all(untuned, out, out.size(), &error);
  EXPECT_EQ(error, errc::protocol_error);

  frame_decoder tuned;
  ASSERT_FALSE(tuned.tune(2047, 1 << 20, 0));
  const auto frames = decode_all(tuned, out);
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[1].text.size(), body.size());
}

TEST(amqp_frame_codec, bad_frame_end_is_a_protocol_error) {
  frame_encoder encoder;
  std::string out;
  amqp_basic_qos_t qos{0, 1, 0};
  ASSERT_FALSE(encoder.append_method(out, 1, AMQP_BASIC_QOS_METHOD, &qos));
  out.back() = 'X';
  frame_decoder decoder;
  std::error_code error;
  const auto frames = decode_all(decoder, out, out.size(), &error);
  EXPECT_TRUE(frames.empty());
  EXPECT_EQ(error, errc::protocol_error);
}

TEST(amqp_frame_codec, method_larger_than_frame_max_is_refused) {
  frame_encoder encoder(frame_min_size);
  field_table huge{{"blob", std::string(2 * frame_min_size, 'z')}};
  amqp_queue_declare_t declare{};
  declare.queue = to_amqp_bytes("q");
  std::string out = "keep";
  EXPECT_EQ(
      encoder.append_method(out, 1, AMQP_QUEUE_DECLARE_METHOD, &declare, &declare.arguments, huge),
      errc::invalid_argument);
  EXPECT_EQ(out, "keep");  // nothing half-written
  // The scratch pool is reusable after a failure.
  field_table small{{"x-queue-type", "classic"}};
  EXPECT_FALSE(encoder.append_method(out, 1, AMQP_QUEUE_DECLARE_METHOD, &declare,
                                     &declare.arguments, small));
}

TEST(amqp_frame_codec, stop_request_drops_the_rest_of_the_input) {
  std::string out;
  frame_encoder::append_heartbeat(out);
  frame_encoder::append_heartbeat(out);
  frame_decoder decoder;
  int calls = 0;
  EXPECT_FALSE(decoder.feed(reinterpret_cast<const std::uint8_t*>(out.data()), out.size(),
                            [&](const amqp_frame_t&) {
                              ++calls;
                              return false;
                            }));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace sluice::amqp
