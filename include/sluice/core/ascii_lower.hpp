#pragma once

#include <string>
#include <string_view>

namespace sluice {

// `text` with A-Z turned into a-z and every other byte kept: for case-insensitive names
// (setting values, media types), never for text in other scripts.
std::string ascii_lower(std::string_view text);

// a == b ignoring the case of A-Z (header names, tokens).
bool ascii_iequals(std::string_view a, std::string_view b);

}  // namespace sluice
