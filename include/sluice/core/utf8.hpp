#pragma once

#include <cstddef>
#include <string_view>

namespace sluice {

// Length of the valid UTF-8 sequence that starts `s` (1 to 4), or 0 when it is not one
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). `s` is not empty.
std::size_t utf8_sequence_length(std::string_view s);

// The whole text is valid UTF-8 (PostgreSQL and systemd both refuse anything else).
bool is_valid_utf8(std::string_view text);

}  // namespace sluice
