#include "sluice/http/json_body.hpp"

#include <string>

#include "sluice/core/ascii_lower.hpp"

namespace sluice::http {
namespace {

std::string lower_trimmed(std::string_view v) {
  const auto begin = v.find_first_not_of(" \t");
  if (begin == std::string_view::npos)
    return {};
  const auto end = v.find_last_not_of(" \t");
  return ascii_lower(v.substr(begin, end - begin + 1));
}

// application/json, or any application/<something>+json, with parameters (charset) ignored.
bool is_json_media_type(std::string_view content_type) {
  const std::string type = lower_trimmed(content_type.substr(0, content_type.find(';')));
  if (type == "application/json")
    return true;
  return type.rfind("application/", 0) == 0 && type.size() > 5 &&
         type.compare(type.size() - 5, 5, "+json") == 0;
}

}  // namespace

std::optional<response> reject_non_json_body(const request& req) {
  if (const auto encoding = req.header("Content-Encoding")) {
    const std::string e = lower_trimmed(*encoding);
    if (!e.empty() && e != "identity") {
      return error_response(415, "unsupported_media_type",
                            "Content-Encoding " + e + " is not supported; send the JSON as is");
    }
  }
  if (const auto type = req.header("Content-Type"); type && !is_json_media_type(*type)) {
    return error_response(415, "unsupported_media_type",
                          "the body must be JSON: send Content-Type: application/json (got " +
                              std::string(type->substr(0, 100)) + ")");
  }
  return std::nullopt;
}

}  // namespace sluice::http
