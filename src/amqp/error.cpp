#include "sluice/amqp/error.hpp"

namespace sluice::amqp {
namespace {

class amqp_error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "amqp"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::timeout:
        return "deadline exceeded";
      case errc::connection_closed:
        return "connection closed";
      case errc::heartbeat_timeout:
        return "no heartbeat from the broker for two intervals";
      case errc::protocol_error:
        return "AMQP protocol error";
      case errc::channel_closed:
        return "channel closed";
      case errc::not_connected:
        return "not connected to the broker";
      case errc::unsupported_mechanism:
        return "broker does not offer SASL PLAIN";
      case errc::handshake_failed:
        return "broker closed the connection during the handshake";
      case errc::channel_limit:
        return "no free channel number";
      case errc::shutting_down:
        return "shutting down";
      case errc::consumer_cancelled:
        return "consumer cancelled by the broker";
      case errc::invalid_argument:
        return "invalid argument";
    }
    return "unknown amqp error " + std::to_string(value);
  }
};

class amqp_reply_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "amqp.reply"; }
  std::string message(int value) const override {
    switch (static_cast<reply_code>(value)) {
      case reply_code::content_too_large:
        return "CONTENT_TOO_LARGE";
      case reply_code::no_route:
        return "NO_ROUTE";
      case reply_code::no_consumers:
        return "NO_CONSUMERS";
      case reply_code::connection_forced:
        return "CONNECTION_FORCED";
      case reply_code::invalid_path:
        return "INVALID_PATH";
      case reply_code::access_refused:
        return "ACCESS_REFUSED";
      case reply_code::not_found:
        return "NOT_FOUND";
      case reply_code::resource_locked:
        return "RESOURCE_LOCKED";
      case reply_code::precondition_failed:
        return "PRECONDITION_FAILED";
      case reply_code::frame_error:
        return "FRAME_ERROR";
      case reply_code::syntax_error:
        return "SYNTAX_ERROR";
      case reply_code::command_invalid:
        return "COMMAND_INVALID";
      case reply_code::channel_error:
        return "CHANNEL_ERROR";
      case reply_code::unexpected_frame:
        return "UNEXPECTED_FRAME";
      case reply_code::resource_error:
        return "RESOURCE_ERROR";
      case reply_code::not_allowed:
        return "NOT_ALLOWED";
      case reply_code::not_implemented:
        return "NOT_IMPLEMENTED";
      case reply_code::internal_error:
        return "INTERNAL_ERROR";
    }
    return "reply code " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const amqp_error_category category;
  return category;
}

const std::error_category& reply_category() noexcept {
  static const amqp_reply_category category;
  return category;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

std::error_code make_error_code(reply_code c) noexcept {
  return {static_cast<int>(c), reply_category()};
}

std::string close_reason::to_string() const {
  if (reply_code != 0) {
    return std::to_string(reply_code) + " " + reply_text;
  }
  return error ? error.message() : std::string("ok");
}

}  // namespace sluice::amqp
