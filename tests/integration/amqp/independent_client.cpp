#include "independent_client.hpp"

#include <stdexcept>
#include <sys/time.h>

#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

namespace sluice::amqp::test {
namespace {

std::string str(amqp_bytes_t b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

amqp_bytes_t bytes(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

std::string describe(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "missing reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* c = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return "connection closed " + std::to_string(c->reply_code) + " " + str(c->reply_text);
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* c = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return "channel closed " + std::to_string(c->reply_code) + " " + str(c->reply_text);
      }
      return "server exception";
  }
  return "unknown";
}

}  // namespace

independent_client::independent_client(const url& broker) : state_(amqp_new_connection()) {
  amqp_socket_t* socket = amqp_tcp_socket_new(state_);
  if (socket == nullptr) {
    amqp_destroy_connection(state_);
    throw std::runtime_error("independent_client: no socket");
  }
  struct timeval timeout {
    10, 0
  };
  if (amqp_socket_open_noblock(socket, broker.host.c_str(), broker.port, &timeout) !=
      AMQP_STATUS_OK) {
    amqp_destroy_connection(state_);
    throw std::runtime_error("independent_client: cannot connect to " + broker.to_string());
  }
  const auto login = amqp_login(state_, broker.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                broker.user.c_str(), broker.password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    amqp_destroy_connection(state_);
    throw std::runtime_error("independent_client: login failed: " + describe(login));
  }
  amqp_channel_open(state_, 1);
  check_rpc("channel.open");
}

independent_client::~independent_client() {
  amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(state_);
}

void independent_client::check_rpc(const char* what) {
  const auto r = amqp_get_rpc_reply(state_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    throw std::runtime_error(std::string("independent_client: ") + what + ": " + describe(r));
  }
}

void independent_client::declare_queue(const std::string& name, bool durable,
                                       const std::string& queue_type) {
  amqp_table_entry_t entry;
  amqp_table_t arguments = amqp_empty_table;
  if (!queue_type.empty()) {
    entry.key = amqp_cstring_bytes("x-queue-type");
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = bytes(queue_type);
    arguments = amqp_table_t{1, &entry};
  }
  amqp_queue_declare(state_, 1, bytes(name), 0, durable ? 1 : 0, 0, 0, arguments);
  check_rpc("queue.declare");
}

void independent_client::delete_queue(const std::string& name) {
  amqp_queue_delete(state_, 1, bytes(name), 0, 0);
  check_rpc("queue.delete");
}

void independent_client::declare_exchange(const std::string& name, const std::string& type,
                                          bool durable) {
  amqp_exchange_declare(state_, 1, bytes(name), bytes(type), 0, durable ? 1 : 0, 0, 0,
                        amqp_empty_table);
  check_rpc("exchange.declare");
}

void independent_client::bind_queue(const std::string& queue, const std::string& exchange,
                                    const std::string& routing_key) {
  amqp_queue_bind(state_, 1, bytes(queue), bytes(exchange), bytes(routing_key), amqp_empty_table);
  check_rpc("queue.bind");
}

void independent_client::delete_exchange(const std::string& name) {
  amqp_exchange_delete(state_, 1, bytes(name), 0);
  check_rpc("exchange.delete");
}

std::uint32_t independent_client::message_count(const std::string& queue) {
  const auto* ok = amqp_queue_declare(state_, 1, bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  check_rpc("queue.declare passive");
  return ok->message_count;
}

void independent_client::publish(const std::string& exchange, const std::string& routing_key,
                                 const std::string& body,
                                 const independent_properties& properties) {
  amqp_basic_properties_t p{};
  std::vector<amqp_table_entry_t> headers;
  if (properties.content_type) {
    p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.content_type = bytes(*properties.content_type);
  }
  if (properties.delivery_mode) {
    p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = *properties.delivery_mode;
  }
  if (properties.message_id) {
    p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    p.message_id = bytes(*properties.message_id);
  }
  if (properties.correlation_id) {
    p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
    p.correlation_id = bytes(*properties.correlation_id);
  }
  if (!properties.string_headers.empty()) {
    for (const auto& [k, v] : properties.string_headers) {
      amqp_table_entry_t e;
      e.key = bytes(k);
      e.value.kind = AMQP_FIELD_KIND_UTF8;
      e.value.value.bytes = bytes(v);
      headers.push_back(e);
    }
    p._flags |= AMQP_BASIC_HEADERS_FLAG;
    p.headers = amqp_table_t{static_cast<int>(headers.size()), headers.data()};
  }
  if (amqp_basic_publish(state_, 1, bytes(exchange), bytes(routing_key), 0, 0, &p, bytes(body)) !=
      AMQP_STATUS_OK) {
    throw std::runtime_error("independent_client: basic.publish failed");
  }
}

std::vector<received_message> independent_client::consume(const std::string& queue,
                                                          std::size_t count,
                                                          std::chrono::milliseconds idle_timeout) {
  // A fresh channel per call: the consumer ends with it, and no stale delivery leaks into the
  // next call.
  const auto ch = static_cast<amqp_channel_t>(next_channel_++);
  amqp_channel_open(state_, ch);
  check_rpc("channel.open");
  amqp_basic_qos(state_, ch, 0, 500, 0);
  check_rpc("basic.qos");
  amqp_basic_consume(state_, ch, bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  check_rpc("basic.consume");

  std::vector<received_message> out;
  out.reserve(count);
  while (out.size() < count) {
    amqp_maybe_release_buffers(state_);
    amqp_envelope_t envelope;
    struct timeval timeout {
      static_cast<time_t>(idle_timeout.count() / 1000),
          static_cast<suseconds_t>((idle_timeout.count() % 1000) * 1000)
    };
    const auto r = amqp_consume_message(state_, &envelope, &timeout, 0);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
      break;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      // A method frame that is not a delivery (a late frame of an earlier channel, a
      // connection.blocked notice): rabbitmq-c leaves it for us to read; skip it and go on.
      amqp_frame_t frame;
      if (amqp_simple_wait_frame(state_, &frame) != AMQP_STATUS_OK) {
        throw std::runtime_error("independent_client: reading an unexpected frame failed");
      }
      continue;
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      throw std::runtime_error("independent_client: consume failed: " + describe(r));
    }
    received_message m;
    m.exchange = str(envelope.exchange);
    m.routing_key = str(envelope.routing_key);
    m.redelivered = envelope.redelivered != 0;
    m.body = str(envelope.message.body);
    const auto& p = envelope.message.properties;
    if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
      m.content_type = str(p.content_type);
    }
    if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) {
      m.delivery_mode = p.delivery_mode;
    }
    if (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
      m.message_id = str(p.message_id);
    }
    if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
      m.correlation_id = str(p.correlation_id);
    }
    if (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) {
      m.timestamp = p.timestamp;
    }
    if (p._flags & AMQP_BASIC_REPLY_TO_FLAG) {
      m.reply_to = str(p.reply_to);
    }
    if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
      for (int i = 0; i < p.headers.num_entries; ++i) {
        const auto& e = p.headers.entries[i];
        switch (e.value.kind) {
          case AMQP_FIELD_KIND_UTF8:
          case AMQP_FIELD_KIND_BYTES:
            m.string_headers[str(e.key)] = str(e.value.value.bytes);
            break;
          case AMQP_FIELD_KIND_I64:
            m.int_headers[str(e.key)] = e.value.value.i64;
            break;
          case AMQP_FIELD_KIND_I32:
            m.int_headers[str(e.key)] = e.value.value.i32;
            break;
          default:
            break;
        }
      }
    }
    amqp_basic_ack(state_, ch, envelope.delivery_tag, 0);
    amqp_destroy_envelope(&envelope);
    out.push_back(std::move(m));
  }
  amqp_channel_close(state_, ch, AMQP_REPLY_SUCCESS);
  check_rpc("channel.close");
  return out;
}

}  // namespace sluice::amqp::test
