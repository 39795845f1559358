#pragma once

#include <cstdint>
#include <string>
#include <system_error>

namespace sluice::amqp {

// Failures detected on this side of the wire. Socket errors keep their asio/system codes.
enum class errc {
  timeout = 1,            // a deadline passed (connect, handshake, RPC, publish slot)
  connection_closed,      // the connection is closed or was never opened
  heartbeat_timeout,      // no traffic from the peer for two heartbeat intervals
  protocol_error,         // undecodable or unexpected frame
  channel_closed,         // the channel is closed (see its close_reason for why)
  not_connected,          // the client has no usable connection right now
  unsupported_mechanism,  // the broker does not offer SASL PLAIN
  handshake_failed,       // the broker closed the socket during the handshake
  channel_limit,          // every channel number up to channel_max is in use
  shutting_down,          // the owner was stopped before the operation finished
  consumer_cancelled,     // the broker cancelled the consumer (queue deleted, ...)
  invalid_argument,
};

// Reply codes the broker sends in connection.close / channel.close / basic.return. The
// error_code value is the code itself, so `ec.value()` is what RabbitMQ logged.
enum class reply_code : std::uint16_t {
  content_too_large = 311,
  no_route = 312,
  no_consumers = 313,
  connection_forced = 320,
  invalid_path = 402,
  access_refused = 403,
  not_found = 404,
  resource_locked = 405,
  precondition_failed = 406,
  frame_error = 501,
  syntax_error = 502,
  command_invalid = 503,
  channel_error = 504,
  unexpected_frame = 505,
  resource_error = 506,
  not_allowed = 530,
  not_implemented = 540,
  internal_error = 541,
};

const std::error_category& error_category() noexcept;
const std::error_category& reply_category() noexcept;

std::error_code make_error_code(errc e) noexcept;
std::error_code make_error_code(reply_code c) noexcept;

// Why a connection or channel ended: the error plus the broker's own words when it was the
// broker that closed it (e.g. 406 "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' ...").
struct close_reason {
  std::error_code error;
  std::uint16_t reply_code = 0;  // 0 when the close did not come from the broker
  std::string reply_text;
  std::uint16_t class_id = 0;  // the method that caused it, when the broker says
  std::uint16_t method_id = 0;

  std::string to_string() const;
};

}  // namespace sluice::amqp

template <>
struct std::is_error_code_enum<sluice::amqp::errc> : std::true_type {};
template <>
struct std::is_error_code_enum<sluice::amqp::reply_code> : std::true_type {};
