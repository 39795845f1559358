#include "sluice/amqp/frame_codec.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "sluice/amqp/error.hpp"

namespace sluice::amqp {
namespace {

void put16(char* p, std::uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v);
}

void put32(char* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) {
    p[i] = static_cast<char>(v);
    v >>= 8;
  }
}

void put64(char* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v);
    v >>= 8;
  }
}

void put_frame_header(char* p, std::uint8_t type, std::uint16_t channel, std::uint32_t size) {
  p[0] = static_cast<char>(type);
  put16(p + 1, channel);
  put32(p + 3, size);
}

// rabbitmq-c encoders report a too-small buffer as one of these two statuses.
bool is_out_of_room(int status) {
  return status == AMQP_STATUS_BAD_AMQP_DATA || status == AMQP_STATUS_TABLE_TOO_BIG;
}

// Appends one frame whose payload `encode(char* payload, size_t room)` writes, returning the
// bytes written or a negative rabbitmq-c status. Starts small and grows the room up to
// frame_max, so the common small method costs no large zero-fill.
template <class Encode>
std::error_code append_frame(std::string& out, std::uint8_t type, std::uint16_t channel,
                             std::uint32_t frame_max, Encode&& encode) {
  const std::size_t start = out.size();
  const std::size_t max_payload = frame_max - frame_overhead;
  std::size_t room = std::min<std::size_t>(512, max_payload);
  for (;;) {
    out.resize(start + frame_header_size + room + 1);
    const int written = encode(out.data() + start + frame_header_size, room);
    if (written >= 0) {
      const auto size = static_cast<std::uint32_t>(written);
      put_frame_header(out.data() + start, type, channel, size);
      out[start + frame_header_size + size] = static_cast<char>(frame_end_octet);
      out.resize(start + frame_header_size + size + 1);
      return {};
    }
    if (is_out_of_room(written) && room < max_payload) {
      room = std::min(room * 4, max_payload);
      continue;
    }
    out.resize(start);
    return is_out_of_room(written) ? make_error_code(errc::invalid_argument)
                                   : make_error_code(errc::protocol_error);
  }
}

amqp_field_value_t to_amqp_field(const field_value& value, amqp_pool_t* pool);

amqp_array_t to_amqp_array(const field_array& array, amqp_pool_t* pool) {
  amqp_array_t out{0, nullptr};
  if (array.empty()) {
    return out;
  }
  out.entries = static_cast<amqp_field_value_t*>(
      amqp_pool_alloc(pool, array.size() * sizeof(amqp_field_value_t)));
  out.num_entries = static_cast<int>(array.size());
  for (std::size_t i = 0; i < array.size(); ++i) {
    out.entries[i] = to_amqp_field(array[i], pool);
  }
  return out;
}

amqp_field_value_t to_amqp_field(const field_value& value, amqp_pool_t* pool) {
  amqp_field_value_t out{};
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          out.kind = AMQP_FIELD_KIND_VOID;
        } else if constexpr (std::is_same_v<T, bool>) {
          out.kind = AMQP_FIELD_KIND_BOOLEAN;
          out.value.boolean = v ? 1 : 0;
        } else if constexpr (std::is_same_v<T, std::int8_t>) {
          out.kind = AMQP_FIELD_KIND_I8;
          out.value.i8 = v;
        } else if constexpr (std::is_same_v<T, std::uint8_t>) {
          out.kind = AMQP_FIELD_KIND_U8;
          out.value.u8 = v;
        } else if constexpr (std::is_same_v<T, std::int16_t>) {
          out.kind = AMQP_FIELD_KIND_I16;
          out.value.i16 = v;
        } else if constexpr (std::is_same_v<T, std::uint16_t>) {
          out.kind = AMQP_FIELD_KIND_U16;
          out.value.u16 = v;
        } else if constexpr (std::is_same_v<T, std::int32_t>) {
          out.kind = AMQP_FIELD_KIND_I32;
          out.value.i32 = v;
        } else if constexpr (std::is_same_v<T, std::uint32_t>) {
          out.kind = AMQP_FIELD_KIND_U32;
          out.value.u32 = v;
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          out.kind = AMQP_FIELD_KIND_I64;
          out.value.i64 = v;
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
          out.kind = AMQP_FIELD_KIND_U64;
          out.value.u64 = v;
        } else if constexpr (std::is_same_v<T, float>) {
          out.kind = AMQP_FIELD_KIND_F32;
          out.value.f32 = v;
        } else if constexpr (std::is_same_v<T, double>) {
          out.kind = AMQP_FIELD_KIND_F64;
          out.value.f64 = v;
        } else if constexpr (std::is_same_v<T, decimal>) {
          out.kind = AMQP_FIELD_KIND_DECIMAL;
          out.value.decimal = amqp_decimal_t{v.decimals, v.value};
        } else if constexpr (std::is_same_v<T, std::string>) {
          out.kind = AMQP_FIELD_KIND_UTF8;
          out.value.bytes = to_amqp_bytes(v);
        } else if constexpr (std::is_same_v<T, byte_array>) {
          out.kind = AMQP_FIELD_KIND_BYTES;
          out.value.bytes = to_amqp_bytes(v.bytes);
        } else if constexpr (std::is_same_v<T, timestamp>) {
          out.kind = AMQP_FIELD_KIND_TIMESTAMP;
          out.value.u64 = v.seconds;
        } else if constexpr (std::is_same_v<T, field_array>) {
          out.kind = AMQP_FIELD_KIND_ARRAY;
          out.value.array = to_amqp_array(v, pool);
        } else if constexpr (std::is_same_v<T, field_table>) {
          out.kind = AMQP_FIELD_KIND_TABLE;
          out.value.table = to_amqp_table(v, pool);
        }
      },
      value.value);
  return out;
}

field_value from_amqp_field(const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
      return field_value(v.value.boolean != 0);
    case AMQP_FIELD_KIND_I8:
      return field_value(v.value.i8);
    case AMQP_FIELD_KIND_U8:
      return field_value(v.value.u8);
    case AMQP_FIELD_KIND_I16:
      return field_value(v.value.i16);
    case AMQP_FIELD_KIND_U16:
      return field_value(v.value.u16);
    case AMQP_FIELD_KIND_I32:
      return field_value(v.value.i32);
    case AMQP_FIELD_KIND_U32:
      return field_value(v.value.u32);
    case AMQP_FIELD_KIND_I64:
      return field_value(v.value.i64);
    case AMQP_FIELD_KIND_U64:
      return field_value(v.value.u64);
    case AMQP_FIELD_KIND_F32:
      return field_value(v.value.f32);
    case AMQP_FIELD_KIND_F64:
      return field_value(v.value.f64);
    case AMQP_FIELD_KIND_DECIMAL:
      return field_value(decimal{v.value.decimal.decimals, v.value.decimal.value});
    case AMQP_FIELD_KIND_UTF8:
      return field_value(to_string(v.value.bytes));
    case AMQP_FIELD_KIND_BYTES:
      return field_value(byte_array{to_string(v.value.bytes)});
    case AMQP_FIELD_KIND_TIMESTAMP:
      return field_value(timestamp{v.value.u64});
    case AMQP_FIELD_KIND_ARRAY: {
      field_array array;
      array.reserve(static_cast<std::size_t>(std::max(0, v.value.array.num_entries)));
      for (int i = 0; i < v.value.array.num_entries; ++i) {
        array.push_back(from_amqp_field(v.value.array.entries[i]));
      }
      return field_value(std::move(array));
    }
    case AMQP_FIELD_KIND_TABLE:
      return field_value(from_amqp_table(v.value.table));
    default:
      return field_value();
  }
}

}  // namespace

frame_encoder::frame_encoder(std::uint32_t frame_max) : frame_max_(frame_max) {
  init_amqp_pool(&scratch_, 4096);
}

frame_encoder::~frame_encoder() {
  empty_amqp_pool(&scratch_);
}

std::error_code frame_encoder::append_method(std::string& out, std::uint16_t channel,
                                             amqp_method_number_t method, void* decoded) {
  return append_frame(
      out, AMQP_FRAME_METHOD, channel, frame_max_, [&](char* payload, std::size_t room) -> int {
        if (room < 4) {
          return AMQP_STATUS_BAD_AMQP_DATA;
        }
        put32(payload, method);
        const int n = amqp_encode_method(method, decoded, amqp_bytes_t{room - 4, payload + 4});
        return n < 0 ? n : n + 4;
      });
}

std::error_code frame_encoder::append_method(std::string& out, std::uint16_t channel,
                                             amqp_method_number_t method, void* decoded,
                                             amqp_table_t* table_slot, const field_table& table) {
  *table_slot = to_amqp_table(table, &scratch_);
  const auto ec = append_method(out, channel, method, decoded);
  *table_slot = amqp_empty_table;
  recycle_amqp_pool(&scratch_);
  return ec;
}

std::error_code frame_encoder::append_content(std::string& out, std::uint16_t channel,
                                              const message_properties& properties,
                                              std::string_view body) {
  amqp_basic_properties_t props = to_amqp_properties(properties, &scratch_);
  auto ec = append_frame(
      out, AMQP_FRAME_HEADER, channel, frame_max_, [&](char* payload, std::size_t room) -> int {
        if (room < 12) {
          return AMQP_STATUS_BAD_AMQP_DATA;
        }
        put16(payload, AMQP_BASIC_CLASS);
        put16(payload + 2, 0);
        put64(payload + 4, body.size());
        const int n =
            amqp_encode_properties(AMQP_BASIC_CLASS, &props, amqp_bytes_t{room - 12, payload + 12});
        return n < 0 ? n : n + 12;
      });
  recycle_amqp_pool(&scratch_);
  if (ec) {
    return ec;
  }
  const std::size_t max_payload = frame_max_ - frame_overhead;
  const std::size_t frames = (body.size() + max_payload - 1) / max_payload;
  out.reserve(out.size() + body.size() + frames * frame_overhead);
  while (!body.empty()) {
    const std::size_t n = std::min(body.size(), max_payload);
    char header[frame_header_size];
    put_frame_header(header, AMQP_FRAME_BODY, channel, static_cast<std::uint32_t>(n));
    out.append(header, frame_header_size);
    out.append(body.data(), n);
    out.push_back(static_cast<char>(frame_end_octet));
    body.remove_prefix(n);
  }
  return {};
}

void frame_encoder::append_heartbeat(std::string& out) {
  char frame[frame_overhead];
  put_frame_header(frame, AMQP_FRAME_HEARTBEAT, 0, 0);
  frame[frame_header_size] = static_cast<char>(frame_end_octet);
  out.append(frame, frame_overhead);
}

frame_decoder::frame_decoder() : state_(amqp_new_connection()) {
  if (state_ == nullptr) {
    throw std::bad_alloc();
  }
  // A new rabbitmq-c state expects the broker's 8-byte protocol-header reply first and, when
  // it gets a frame instead, copies only 7 of those 8 bytes into the frame buffer (a zero-size
  // frame then fails its end-octet check). Feeding it a protocol header moves it to the idle
  // state, from which every frame is read the ordinary way; it also allows tune() at once. A
  // broker answering our header with its own (version mismatch) then fails as a bad frame.
  amqp_frame_t frame;
  const int consumed = amqp_handle_input(state_, to_amqp_bytes(protocol_header), &frame);
  if (consumed != static_cast<int>(protocol_header.size()) || !amqp_release_buffers_ok(state_)) {
    amqp_destroy_connection(state_);
    throw std::logic_error("rabbitmq-c decoder did not accept the protocol header");
  }
}

frame_decoder::~frame_decoder() {
  amqp_destroy_connection(state_);
}

std::error_code frame_decoder::tune(std::uint16_t channel_max, std::uint32_t frame_max,
                                    std::uint16_t heartbeat) {
  // rabbitmq-c aborts the process when tuned in the middle of a frame.
  if (!amqp_release_buffers_ok(state_)) {
    return make_error_code(errc::protocol_error);
  }
  const int status =
      amqp_tune_connection(state_, channel_max, static_cast<int>(frame_max), heartbeat);
  return status == AMQP_STATUS_OK ? std::error_code{} : decoder_error(status);
}

std::error_code decoder_error(int /*amqp_status*/) {
  return make_error_code(errc::protocol_error);
}

field_table from_amqp_table(const amqp_table_t& table) {
  field_table out;
  for (int i = 0; i < table.num_entries; ++i) {
    const amqp_table_entry_t& e = table.entries[i];
    out.set(to_string(e.key), from_amqp_field(e.value));
  }
  return out;
}

amqp_table_t to_amqp_table(const field_table& table, amqp_pool_t* pool) {
  amqp_table_t out{0, nullptr};
  if (table.empty()) {
    return out;
  }
  out.entries = static_cast<amqp_table_entry_t*>(
      amqp_pool_alloc(pool, table.size() * sizeof(amqp_table_entry_t)));
  out.num_entries = static_cast<int>(table.size());
  std::size_t i = 0;
  for (const auto& e : table) {
    out.entries[i].key = to_amqp_bytes(e.key);
    out.entries[i].value = to_amqp_field(e.value, pool);
    ++i;
  }
  return out;
}

message_properties from_amqp_properties(const amqp_basic_properties_t& p) {
  message_properties out;
  const auto flags = p._flags;
  if (flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
    out.content_type = to_string(p.content_type);
  }
  if (flags & AMQP_BASIC_CONTENT_ENCODING_FLAG) {
    out.content_encoding = to_string(p.content_encoding);
  }
  if (flags & AMQP_BASIC_HEADERS_FLAG) {
    out.headers = from_amqp_table(p.headers);
  }
  if (flags & AMQP_BASIC_DELIVERY_MODE_FLAG) {
    out.delivery_mode = p.delivery_mode;
  }
  if (flags & AMQP_BASIC_PRIORITY_FLAG) {
    out.priority = p.priority;
  }
  if (flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
    out.correlation_id = to_string(p.correlation_id);
  }
  if (flags & AMQP_BASIC_REPLY_TO_FLAG) {
    out.reply_to = to_string(p.reply_to);
  }
  if (flags & AMQP_BASIC_EXPIRATION_FLAG) {
    out.expiration = to_string(p.expiration);
  }
  if (flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
    out.message_id = to_string(p.message_id);
  }
  if (flags & AMQP_BASIC_TIMESTAMP_FLAG) {
    out.timestamp = p.timestamp;
  }
  if (flags & AMQP_BASIC_TYPE_FLAG) {
    out.type = to_string(p.type);
  }
  if (flags & AMQP_BASIC_USER_ID_FLAG) {
    out.user_id = to_string(p.user_id);
  }
  if (flags & AMQP_BASIC_APP_ID_FLAG) {
    out.app_id = to_string(p.app_id);
  }
  return out;
}

amqp_basic_properties_t to_amqp_properties(const message_properties& m, amqp_pool_t* pool) {
  amqp_basic_properties_t p{};
  auto set_bytes = [&p](const std::optional<std::string>& value, amqp_bytes_t& slot,
                        amqp_flags_t flag) {
    if (value) {
      slot = to_amqp_bytes(*value);
      p._flags |= flag;
    }
  };
  set_bytes(m.content_type, p.content_type, AMQP_BASIC_CONTENT_TYPE_FLAG);
  set_bytes(m.content_encoding, p.content_encoding, AMQP_BASIC_CONTENT_ENCODING_FLAG);
  if (m.headers) {
    p.headers = to_amqp_table(*m.headers, pool);
    p._flags |= AMQP_BASIC_HEADERS_FLAG;
  }
  if (m.delivery_mode) {
    p.delivery_mode = *m.delivery_mode;
    p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
  }
  if (m.priority) {
    p.priority = *m.priority;
    p._flags |= AMQP_BASIC_PRIORITY_FLAG;
  }
  set_bytes(m.correlation_id, p.correlation_id, AMQP_BASIC_CORRELATION_ID_FLAG);
  set_bytes(m.reply_to, p.reply_to, AMQP_BASIC_REPLY_TO_FLAG);
  set_bytes(m.expiration, p.expiration, AMQP_BASIC_EXPIRATION_FLAG);
  set_bytes(m.message_id, p.message_id, AMQP_BASIC_MESSAGE_ID_FLAG);
  if (m.timestamp) {
    p.timestamp = *m.timestamp;
    p._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
  }
  set_bytes(m.type, p.type, AMQP_BASIC_TYPE_FLAG);
  set_bytes(m.user_id, p.user_id, AMQP_BASIC_USER_ID_FLAG);
  set_bytes(m.app_id, p.app_id, AMQP_BASIC_APP_ID_FLAG);
  return p;
}

}  // namespace sluice::amqp
