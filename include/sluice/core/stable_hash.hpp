#pragma once

#include <cstdint>
#include <string_view>

namespace sluice {

// A 64-bit hash that is the same in every build, on every machine and in every version of
// sluice: FNV-1a over the bytes, then splitmix64's finaliser so that every output bit depends on
// every input bit (plain FNV-1a's high bits mix poorly for short keys). For values that leave
// the process or must agree between instances (flavour picks, cursor checksums); std::hash
// promises neither. Not cryptographic.
constexpr std::uint64_t stable_hash64(std::string_view bytes,
                                      std::uint64_t seed = 0xcbf29ce484222325ULL) {
  std::uint64_t h = seed;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

}  // namespace sluice
