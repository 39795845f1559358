#include "sluice/rpc/rpc_message.hpp"

#include <algorithm>
#include <charconv>

namespace sluice::rpc {
namespace {

const std::string* string_header(const amqp::message_properties& p, std::string_view key) {
  if (!p.headers)
    return nullptr;
  const amqp::field_value* v = p.headers->find(key);
  return v ? v->get_if<std::string>() : nullptr;
}

std::optional<std::int64_t> int_header(const amqp::message_properties& p, std::string_view key) {
  if (!p.headers)
    return std::nullopt;
  const amqp::field_value* v = p.headers->find(key);
  if (!v)
    return std::nullopt;
  if (const auto* i64 = v->get_if<std::int64_t>())
    return *i64;
  if (const auto* i32 = v->get_if<std::int32_t>())
    return *i32;
  if (const auto* s = v->get_if<std::string>()) {
    std::int64_t out = 0;
    const auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), out);
    if (ec == std::errc{} && ptr == s->data() + s->size())
      return out;
  }
  return std::nullopt;
}

}  // namespace

std::string format_header_block(const header_list& headers) {
  std::size_t size = 0;
  for (const auto& [name, value] : headers)
    size += name.size() + value.size() + 4;
  std::string out;
  out.reserve(size);
  for (const auto& [name, value] : headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  return out;
}

std::optional<header_list> parse_header_block(std::string_view block) {
  header_list out;
  while (!block.empty()) {
    const auto end = block.find("\r\n");
    if (end == std::string_view::npos)
      return std::nullopt;
    const std::string_view line = block.substr(0, end);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return std::nullopt;
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
    out.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    block.remove_prefix(end + 2);
  }
  return out;
}

amqp::outgoing_message encode_request(const rpc_request& request, std::string exchange,
                                      const reply_address& reply, std::int64_t now_ms) {
  amqp::outgoing_message m;
  m.exchange = std::move(exchange);
  m.properties.content_type = "application/octet-stream";
  m.properties.message_id = request.id;
  m.properties.delivery_mode =
      request.async ? amqp::delivery_mode_persistent : amqp::delivery_mode_transient;
  if (!reply.correlation_id.empty())
    m.properties.correlation_id = reply.correlation_id;
  if (!reply.reply_to.empty())
    m.properties.reply_to = reply.reply_to;
  amqp::field_table headers;
  headers.set("flavour", request.flavour);
  headers.set("x-sluice-service", request.service);
  headers.set("x-sluice-method", request.method);
  headers.set("x-sluice-target", request.target);
  headers.set("x-sluice-headers", format_header_block(request.headers));
  if (request.deadline_ms > 0) {
    headers.set("x-sluice-deadline-ms", request.deadline_ms);
    // The broker drops the message once the caller has given up, so no worker starts it.
    m.properties.expiration =
        std::to_string(std::max<std::int64_t>(request.deadline_ms - now_ms, 1));
  }
  if (request.async)
    headers.set("x-sluice-async", true);
  m.properties.headers = std::move(headers);
  m.body = request.body;
  return m;
}

std::optional<rpc_request> decode_request(const amqp::delivery& delivery, std::string* why) {
  const auto& p = delivery.properties;
  const auto fail = [&](const char* what) -> std::optional<rpc_request> {
    if (why)
      *why = what;
    return std::nullopt;
  };
  const std::string* flavour = string_header(p, "flavour");
  const std::string* method = string_header(p, "x-sluice-method");
  const std::string* target = string_header(p, "x-sluice-target");
  const std::string* block = string_header(p, "x-sluice-headers");
  if (!flavour || !method || !target || !block)
    return fail(
        "missing one of the headers flavour, x-sluice-method, x-sluice-target, "
        "x-sluice-headers");
  auto headers = parse_header_block(*block);
  if (!headers)
    return fail("malformed x-sluice-headers");
  rpc_request out;
  out.id = p.message_id.value_or("");
  if (const std::string* service = string_header(p, "x-sluice-service"))
    out.service = *service;
  out.flavour = *flavour;
  out.method = *method;
  out.target = *target;
  out.headers = std::move(*headers);
  out.body = delivery.body;
  out.deadline_ms = int_header(p, "x-sluice-deadline-ms").value_or(0);
  if (p.headers) {
    if (const auto* v = p.headers->find("x-sluice-async")) {
      if (const bool* b = v->get_if<bool>())
        out.async = *b;
    }
  }
  return out;
}

reply_address reply_address_of(const amqp::delivery& delivery) {
  return {delivery.properties.reply_to.value_or(""),
          delivery.properties.correlation_id.value_or("")};
}

amqp::outgoing_message encode_reply(const rpc_reply& reply, const reply_address& to) {
  amqp::outgoing_message m;
  m.exchange = "";
  m.routing_key = to.reply_to;
  m.properties.correlation_id = to.correlation_id;
  m.properties.delivery_mode = amqp::delivery_mode_transient;
  amqp::field_table headers;
  headers.set("x-sluice-status", static_cast<std::int32_t>(reply.status));
  headers.set("x-sluice-headers", format_header_block(reply.headers));
  if (!reply.error_code.empty()) {
    headers.set("x-sluice-error", reply.error_code);
    headers.set("x-sluice-error-message", reply.error_message);
  }
  m.properties.headers = std::move(headers);
  m.body = reply.body;
  return m;
}

std::optional<rpc_reply> decode_reply(const amqp::delivery& delivery, std::string* why) {
  const auto& p = delivery.properties;
  const auto status = int_header(p, "x-sluice-status");
  const std::string* block = string_header(p, "x-sluice-headers");
  if (!status || !block) {
    if (why)
      *why = "missing x-sluice-status or x-sluice-headers";
    return std::nullopt;
  }
  auto headers = parse_header_block(*block);
  if (!headers) {
    if (why)
      *why = "malformed x-sluice-headers";
    return std::nullopt;
  }
  rpc_reply out;
  out.status = static_cast<int>(*status);
  out.headers = std::move(*headers);
  out.body = delivery.body;
  if (const std::string* code = string_header(p, "x-sluice-error"))
    out.error_code = *code;
  if (const std::string* text = string_header(p, "x-sluice-error-message"))
    out.error_message = *text;
  return out;
}

}  // namespace sluice::rpc
