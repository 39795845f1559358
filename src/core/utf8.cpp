#include "sluice/core/utf8.hpp"

namespace sluice {

std::size_t utf8_sequence_length(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  auto cont = [&](std::size_t i) {
    return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80;
  };
  if (b0 < 0x80)
    return 1;
  if (b0 >= 0xc2 && b0 <= 0xdf)
    return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    if (!cont(1) || !cont(2))
      return 0;
    const auto b1 = static_cast<unsigned char>(s[1]);
    if (b0 == 0xe0 && b1 < 0xa0)
      return 0;
    if (b0 == 0xed && b1 > 0x9f)
      return 0;
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3))
      return 0;
    const auto b1 = static_cast<unsigned char>(s[1]);
    if (b0 == 0xf0 && b1 < 0x90)
      return 0;
    if (b0 == 0xf4 && b1 > 0x8f)
      return 0;
    return 4;
  }
  return 0;
}

bool is_valid_utf8(std::string_view text) {
  while (!text.empty()) {
    const std::size_t n = utf8_sequence_length(text);
    if (n == 0)
      return false;
    text.remove_prefix(n);
  }
  return true;
}

}  // namespace sluice
