#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

// RFC 4648 base64 with padding (the standard alphabet), for bytes carried inside JSON.
std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not canonical padded base64 (wrong length, a character outside the
// alphabet, padding in the middle).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace sluice
