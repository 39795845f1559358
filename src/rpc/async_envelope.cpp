#include "sluice/rpc/async_envelope.hpp"

#include "sluice/core/base64.hpp"
#include "sluice/core/utf8.hpp"

#include <nlohmann/json.hpp>

namespace sluice::rpc {
namespace {

using json = nlohmann::json;

bool is_text(std::string_view s) {
  return is_valid_utf8(s) && s.find('\0') == std::string_view::npos;
}

}  // namespace

std::string async_queue(std::string_view service) {
  std::string q(async_queue_prefix);
  q += service;
  return q;
}

bool is_async_queue(std::string_view queue) {
  return queue.size() > async_queue_prefix.size() && queue.starts_with(async_queue_prefix);
}

std::string_view service_of_async_queue(std::string_view queue) {
  return is_async_queue(queue) ? queue.substr(async_queue_prefix.size()) : std::string_view{};
}

std::string async_exchange(std::string_view namespace_, std::string_view service) {
  std::string e(namespace_);
  e += '.';
  e += service;
  return e;
}

std::string encode_async_envelope(const rpc_request& request, std::string_view namespace_,
                                  const reply_address& reply) {
  json headers = json::array();
  for (const auto& [name, value] : request.headers) {
    if (is_valid_utf8(name) && is_valid_utf8(value))
      headers.push_back(json::array({name, value}));
    else
      headers.push_back(json::array({base64_encode(name), base64_encode(value), "base64"}));
  }
  json e = {{"v", 1},
            {"service", request.service},
            {"namespace", namespace_},
            {"flavour", request.flavour},
            {"method", request.method},
            {"headers", std::move(headers)}};
  if (is_valid_utf8(request.target)) {
    e["target"] = request.target;
  } else {
    e["target"] = base64_encode(request.target);
    e["targetEncoding"] = "base64";
  }
  if (is_text(request.body)) {
    e["body"] = request.body;
    e["bodyEncoding"] = "utf8";
  } else {
    e["body"] = base64_encode(request.body);
    e["bodyEncoding"] = "base64";
  }
  if (!reply.reply_to.empty())
    e["reply_to"] = reply.reply_to;
  if (!reply.correlation_id.empty())
    e["correlation_id"] = reply.correlation_id;
  return e.dump();
}

std::optional<async_envelope> decode_async_envelope(std::string_view payload, std::string* why) {
  const auto fail = [&](std::string what) -> std::optional<async_envelope> {
    if (why)
      *why = std::move(what);
    return std::nullopt;
  };
  const json e = json::parse(payload, nullptr, false);
  if (e.is_discarded() || !e.is_object())
    return fail("not a JSON object");
  const auto v = e.find("v");
  if (v == e.end() || !v->is_number_integer() || v->get<int>() != 1)
    return fail("unknown envelope version");
  const auto text = [&](const char* key, std::string& out, bool required) {
    const auto it = e.find(key);
    if (it == e.end())
      return !required;
    if (!it->is_string())
      return false;
    out = it->get<std::string>();
    return true;
  };
  async_envelope out;
  rpc_request& r = out.request;
  std::string target_encoding = "utf8";
  std::string body_encoding;
  if (!text("service", r.service, true) || !text("namespace", out.namespace_, true) ||
      !text("flavour", r.flavour, true) || !text("method", r.method, true) ||
      !text("target", r.target, true) || !text("targetEncoding", target_encoding, false) ||
      !text("body", r.body, true) || !text("bodyEncoding", body_encoding, true) ||
      !text("reply_to", out.reply.reply_to, false) ||
      !text("correlation_id", out.reply.correlation_id, false))
    return fail("a field is missing or not a string");
  const auto decode = [](std::string& field, const std::string& encoding) {
    if (encoding == "utf8")
      return true;
    if (encoding != "base64")
      return false;
    auto bytes = base64_decode(field);
    if (!bytes)
      return false;
    field = std::move(*bytes);
    return true;
  };
  if (!decode(r.target, target_encoding))
    return fail("bad target or targetEncoding");
  if (!decode(r.body, body_encoding))
    return fail("bad body or bodyEncoding");
  const auto headers = e.find("headers");
  if (headers == e.end() || !headers->is_array())
    return fail("headers is not an array");
  r.headers.reserve(headers->size());
  for (const auto& h : *headers) {
    if (!h.is_array() || h.size() < 2 || h.size() > 3 || !h[0].is_string() || !h[1].is_string())
      return fail("a header is not [name, value]");
    std::string name = h[0].get<std::string>();
    std::string value = h[1].get<std::string>();
    if (h.size() == 3) {
      if (!h[2].is_string() || !decode(name, h[2].get<std::string>()) ||
          !decode(value, h[2].get<std::string>()))
        return fail("a header's encoding is bad");
    }
    r.headers.emplace_back(std::move(name), std::move(value));
  }
  r.async = true;
  return out;
}

}  // namespace sluice::rpc
