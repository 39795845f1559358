#include "sluice/requests/response_json.hpp"

#include "sluice/core/ascii_lower.hpp"
#include "sluice/core/base64.hpp"
#include "sluice/core/utf8.hpp"

#include <nlohmann/json.hpp>

namespace sluice::requests {
namespace {

using json = nlohmann::json;

bool is_text(std::string_view s) {
  return is_valid_utf8(s) && s.find('\0') == std::string_view::npos;
}

// PostgreSQL's jsonb refuses \u0000 and nlohmann refuses invalid UTF-8 when dumping: both
// become U+FFFD.
std::string as_text(std::string_view s) {
  if (is_text(s))
    return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  while (!s.empty()) {
    const std::size_t n = s.front() == '\0' ? 0 : utf8_sequence_length(s);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      s.remove_prefix(1);
    } else {
      out.append(s.substr(0, n));
      s.remove_prefix(n);
    }
  }
  return out;
}

}  // namespace

std::string response_json(const rpc::rpc_reply& reply) {
  json headers = json::object();
  for (const auto& [raw_name, raw_value] : reply.headers) {
    const std::string name = as_text(ascii_lower(raw_name));
    std::string value = as_text(raw_value);
    auto it = headers.find(name);
    if (name == "set-cookie") {
      if (it == headers.end())
        headers[name] = json::array({std::move(value)});
      else
        it->push_back(std::move(value));
    } else if (it == headers.end()) {
      headers[name] = std::move(value);
    } else {
      *it = it->get<std::string>() + ", " + value;
    }
  }
  json r = {{"status", reply.status}, {"headers", std::move(headers)}};
  if (is_text(reply.body)) {
    r["body"] = reply.body;
    r["bodyEncoding"] = "utf8";
  } else {
    r["body"] = base64_encode(reply.body);
    r["bodyEncoding"] = "base64";
  }
  return r.dump();
}

std::string error_json(const rpc::rpc_reply& reply) {
  return json{{"code", as_text(reply.error_code)}, {"message", as_text(reply.error_message)}}
      .dump();
}

}  // namespace sluice::requests
