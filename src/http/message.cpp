#include "sluice/http/message.hpp"

#include <algorithm>
#include <cctype>

#include "sluice/core/ascii_lower.hpp"
#include "sluice/core/percent_decode.hpp"

#include <nlohmann/json.hpp>

namespace sluice::http {
namespace {

std::string decode_query_component(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%' && i + 2 < in.size() && hex_digit_value(in[i + 1]) >= 0 &&
               hex_digit_value(in[i + 2]) >= 0) {
      out.push_back(
          static_cast<char>(hex_digit_value(in[i + 1]) << 4 | hex_digit_value(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string_view> request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (ascii_iequals(key, name))
      return std::string_view(value);
  }
  return std::nullopt;
}

std::optional<std::string> request::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    // Most keys and values need no decoding; skipping it saves an allocation per parameter
    // looked at (the resolve endpoint looks up four).
    const auto decoded = [](std::string_view text) {
      return text.find_first_of("%+") == std::string_view::npos ? std::string(text)
                                                                : decode_query_component(text);
    };
    const std::string_view key = pair.substr(0, eq);
    const bool match = key.find_first_of("%+") == std::string_view::npos
                           ? key == name
                           : decode_query_component(key) == name;
    if (match)
      return eq == std::string_view::npos ? std::string() : decoded(pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<std::string> request::unknown_query_param(
    std::initializer_list<std::string_view> taken) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const std::string key = decode_query_component(pair.substr(0, pair.find('=')));
    if (key.empty())
      continue;
    if (std::find(taken.begin(), taken.end(), key) == taken.end())
      return key;
  }
  return std::nullopt;
}

response response::json(int status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

response response::text(int status, std::string content_type, std::string body) {
  response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

response& response::with_header(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

response error_response(int status, std::string_view code, std::string_view message) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  // Replacement instead of throwing: a message may quote invalid UTF-8 the client sent.
  return response::json(status,
                        body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

response overloaded_response(int status, std::string_view code, std::string_view message,
                             int retry_after_seconds) {
  return error_response(status, code, message)
      .with_header("Retry-After", std::to_string(retry_after_seconds));
}

}  // namespace sluice::http
