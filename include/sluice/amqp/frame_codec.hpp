#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "sluice/amqp/error.hpp"
#include "sluice/amqp/field_table.hpp"
#include "sluice/amqp/message_properties.hpp"

#include <amqp.h>
#include <amqp_framing.h>

namespace sluice::amqp {

// AMQP 0-9-1 frames on the wire (spec §4.2.3), all integers big-endian:
//
//   offset 0  type      1 byte   1 method, 2 content header, 3 body, 8 heartbeat
//   offset 1  channel   2 bytes  0 for connection-level frames
//   offset 3  size      4 bytes  payload length
//   offset 7  payload   size bytes
//   offset 7+size       1 byte   0xCE frame end
//
// Method payload: class id (2), method id (2), arguments. Content header payload: class id
// (2), weight 0 (2), body size (8), property flags and properties. A message is one method
// frame, one content header and as many body frames as frame_max requires (none for an empty
// body). rabbitmq-c encodes and decodes payloads; the framing around them is ours, because
// rabbitmq-c only writes frames through its own blocking socket.
inline constexpr std::size_t frame_header_size = 7;
inline constexpr std::size_t frame_overhead = frame_header_size + 1;
inline constexpr std::uint8_t frame_end_octet = 0xCE;
inline constexpr std::uint32_t frame_min_size = 4096;  // spec: frame_max is never below this
inline constexpr std::uint32_t default_frame_max = 131072;
inline constexpr std::string_view protocol_header{"AMQP\0\0\x09\x01", 8};

// Appends encoded frames to a write buffer. Reuses one scratch pool for the rabbitmq-c
// structures that tables and properties need while they are being encoded.
class frame_encoder {
 public:
  explicit frame_encoder(std::uint32_t frame_max = default_frame_max);
  ~frame_encoder();
  frame_encoder(const frame_encoder&) = delete;
  frame_encoder& operator=(const frame_encoder&) = delete;

  void set_frame_max(std::uint32_t frame_max) { frame_max_ = frame_max; }
  std::uint32_t frame_max() const { return frame_max_; }

  // `decoded` is the rabbitmq-c argument struct of `method` (e.g. amqp_queue_declare_t).
  std::error_code append_method(std::string& out, std::uint16_t channel,
                                amqp_method_number_t method, void* decoded);
  // A method whose arguments contain a table (queue.declare arguments, start-ok properties):
  // `table_slot` points into `decoded` and is filled from `table` for the encode.
  std::error_code append_method(std::string& out, std::uint16_t channel,
                                amqp_method_number_t method, void* decoded,
                                amqp_table_t* table_slot, const field_table& table);
  // Content header and body frames of one basic-class message.
  std::error_code append_content(std::string& out, std::uint16_t channel,
                                 const message_properties& properties, std::string_view body);
  static void append_heartbeat(std::string& out);

 private:
  std::uint32_t frame_max_;
  amqp_pool_t scratch_;
};

// Feeds received bytes through rabbitmq-c's decoder. Frames handed to the callback point into
// rabbitmq-c's pools, which are recycled right after the callback returns: copy what you keep.
class frame_decoder {
 public:
  frame_decoder();
  ~frame_decoder();
  frame_decoder(const frame_decoder&) = delete;
  frame_decoder& operator=(const frame_decoder&) = delete;

  // Frames larger than frame_max are rejected by the decoder, so tune before the broker may
  // send one (rabbitmq-c's default limit is 128 KiB).
  std::error_code tune(std::uint16_t channel_max, std::uint32_t frame_max, std::uint16_t heartbeat);

  // Calls on_frame(const amqp_frame_t&) for every complete frame in [data, data+size); bytes
  // of an incomplete trailing frame are kept for the next call. on_frame returns false to stop
  // (the rest of the input is then dropped). Returns protocol_error on malformed input.
  template <class OnFrame>
  std::error_code feed(const std::uint8_t* data, std::size_t size, OnFrame&& on_frame);

 private:
  amqp_connection_state_t state_;
};

field_table from_amqp_table(const amqp_table_t& table);
message_properties from_amqp_properties(const amqp_basic_properties_t& properties);
// The result points into `table`'s strings and into `pool`: both must outlive its use.
amqp_table_t to_amqp_table(const field_table& table, amqp_pool_t* pool);
amqp_basic_properties_t to_amqp_properties(const message_properties& properties, amqp_pool_t* pool);

inline amqp_bytes_t to_amqp_bytes(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}
inline std::string to_string(amqp_bytes_t b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

std::error_code decoder_error(int amqp_status);

// channel.close and connection.close carry the same fields: the broker's code, text and the
// method that caused the close.
template <typename Close>
close_reason close_reason_from(const Close& c) {
  close_reason r;
  r.reply_code = c.reply_code;
  r.error = make_error_code(static_cast<reply_code>(c.reply_code));
  r.reply_text = to_string(c.reply_text);
  r.class_id = c.class_id;
  r.method_id = c.method_id;
  return r;
}

template <class OnFrame>
std::error_code frame_decoder::feed(const std::uint8_t* data, std::size_t size,
                                    OnFrame&& on_frame) {
  while (size > 0) {
    amqp_frame_t frame;
    const int consumed =
        amqp_handle_input(state_, amqp_bytes_t{size, const_cast<std::uint8_t*>(data)}, &frame);
    if (consumed < 0) {
      return decoder_error(consumed);
    }
    data += consumed;
    size -= static_cast<std::size_t>(consumed);
    bool go_on = true;
    if (frame.frame_type != 0) {
      go_on = on_frame(static_cast<const amqp_frame_t&>(frame));
    }
    if (amqp_release_buffers_ok(state_)) {
      amqp_release_buffers(state_);
    }
    if (!go_on) {
      break;
    }
  }
  return {};
}

}  // namespace sluice::amqp
