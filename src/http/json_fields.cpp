#include "sluice/http/json_fields.hpp"

#include <optional>
#include <set>
#include <vector>

namespace sluice::http {

using json = nlohmann::json;

void fail_field(std::string field, std::string message) {
  throw field_error{std::move(field), std::move(message)};
}

json parse_strict(std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> repeated;
  const json::parser_callback_t watch = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty())
          open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !repeated &&
            !open_objects.back().insert(parsed.get<std::string>()).second)
          repeated = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  json j = json::parse(text, watch, false);
  if (j.is_discarded())
    fail_field("body", "is not valid JSON");
  if (repeated)
    fail_field(*repeated, "appears twice in one object");
  return j;
}

const json& require_object(const json& value, const std::string& field) {
  if (!value.is_object())
    fail_field(field, "must be a JSON object");
  return value;
}

std::int64_t integer_in(const json& value, const std::string& field, std::int64_t min,
                        std::int64_t max) {
  const std::string range =
      "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!value.is_number_integer())
    fail_field(field, range);
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(max) || static_cast<std::int64_t>(u) < min)
      fail_field(field, range);
    return static_cast<std::int64_t>(u);
  }
  const auto v = value.get<std::int64_t>();
  if (v < min || v > max)
    fail_field(field, range);
  return v;
}

const std::string& string_of(const json& value, const std::string& field) {
  if (!value.is_string())
    fail_field(field, "must be a string");
  return value.get_ref<const std::string&>();
}

}  // namespace sluice::http
