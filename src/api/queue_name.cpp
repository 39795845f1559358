#include "sluice/api/queue_name.hpp"

#include "sluice/core/percent_decode.hpp"
#include "sluice/push/push_request.hpp"

namespace sluice::api {

bool valid_queue_name(std::string_view name) {
  if (name.empty() || name.size() > push::max_name_bytes)
    return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == ':';
    if (!ok)
      return false;
  }
  return true;
}

std::optional<std::string> queue_param(const http::request& req) {
  const auto it = req.params.find("queue");
  if (it == req.params.end())
    return std::nullopt;
  auto name = percent_decode(it->second);
  if (!name || !valid_queue_name(*name))
    return std::nullopt;
  return name;
}

http::response invalid_queue() {
  return http::error_response(400, "invalid_queue",
                              "queue must be 1 to " + std::to_string(push::max_name_bytes) +
                                  " bytes of letters, digits and . _ : -");
}

}  // namespace sluice::api
