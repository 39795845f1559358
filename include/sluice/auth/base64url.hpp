#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::auth {

// base64url without padding (RFC 7515 section 2, RFC 4648 section 5): the encoding of every
// part of a JWS compact serialization.
std::string base64url_encode(std::string_view bytes);
// Refuses padding, characters outside the URL-safe alphabet, a length that no encoding has
// (4n+1) and non-zero bits left over in the last character, so one token has one spelling.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace sluice::auth
