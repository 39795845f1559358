#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace sluice::http {

// Field-by-field reading of an API request body (services, subscriptions): every helper throws
// field_error naming the field, which the API's parser turns into its own error type and a 400.
struct field_error {
  std::string field;
  std::string message;
};

[[noreturn]] void fail_field(std::string field, std::string message);

// The body as JSON; invalid JSON fails field "body", and a key repeated in one object fails that
// key (nlohmann keeps the last of repeated keys; a repeated field is as likely a mistake as an
// unknown one, so it is refused too).
nlohmann::json parse_strict(std::string_view text);

const nlohmann::json& require_object(const nlohmann::json& value, const std::string& field);
// An integer within [min, max] (no fractions, no strings).
std::int64_t integer_in(const nlohmann::json& value, const std::string& field, std::int64_t min,
                        std::int64_t max);
const std::string& string_of(const nlohmann::json& value, const std::string& field);

}  // namespace sluice::http
