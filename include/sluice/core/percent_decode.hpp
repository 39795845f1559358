#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

// The value of one hexadecimal digit, or -1.
int hex_digit_value(char c);

// RFC 3986 percent-decoding of a URL component; nullopt for a '%' not followed by two hex
// digits, so a malformed name is an error rather than a different name.
std::optional<std::string> percent_decode(std::string_view in);

}  // namespace sluice
