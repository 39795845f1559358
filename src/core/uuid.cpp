#include "sluice/core/uuid.hpp"

#include <chrono>
#include <cstring>
#include <random>

#include "sluice/core/percent_decode.hpp"

namespace sluice {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

// splitmix64: cheap, well-distributed bits for the random part; ids need uniqueness, not secrecy.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::string uuid::to_string() const {
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out.push_back('-');
    out.push_back(hex_digits[bytes[i] >> 4]);
    out.push_back(hex_digits[bytes[i] & 0x0f]);
  }
  return out;
}

std::optional<uuid> uuid::parse(std::string_view text) {
  if (text.size() != 36)
    return std::nullopt;
  uuid out;
  std::size_t b = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-')
        return std::nullopt;
      ++i;
      continue;
    }
    const int hi = hex_digit_value(text[i]);
    const int lo = hex_digit_value(text[i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out.bytes[b++] = static_cast<std::uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return out;
}

std::size_t uuid_hash::operator()(const uuid& id) const noexcept {
  // uuidv7: the first half is mostly the timestamp, the second half random.
  std::uint64_t hi = 0, lo = 0;
  std::memcpy(&hi, id.bytes.data(), 8);
  std::memcpy(&lo, id.bytes.data() + 8, 8);
  return static_cast<std::size_t>(lo ^ (hi * 0x9e3779b97f4a7c15ULL));
}

std::int64_t uuid::unix_ms() const {
  std::int64_t ms = 0;
  for (int i = 0; i < 6; ++i)
    ms = ms << 8 | bytes[i];
  return ms;
}

uuid_v7_generator::uuid_v7_generator() : rng_state_(std::random_device{}()) {
  rng_state_ = rng_state_ << 32 ^ std::random_device{}();
}

uuid uuid_v7_generator::next(std::int64_t now_unix_ms) {
  if (now_unix_ms > last_ms_) {
    last_ms_ = now_unix_ms;
    // Start the counter in the lower half so a burst has room to count up.
    counter_ = static_cast<std::uint16_t>(splitmix64(rng_state_) & 0x07ff);
  } else if (++counter_ > 0x0fff) {
    ++last_ms_;
    counter_ = 0;
  }
  const std::uint64_t rand_b = splitmix64(rng_state_);
  uuid id;
  const auto ms = static_cast<std::uint64_t>(last_ms_);
  for (int i = 0; i < 6; ++i)
    id.bytes[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  id.bytes[6] = static_cast<std::uint8_t>(0x70 | (counter_ >> 8));
  id.bytes[7] = static_cast<std::uint8_t>(counter_ & 0xff);
  id.bytes[8] = static_cast<std::uint8_t>(0x80 | ((rand_b >> 56) & 0x3f));
  for (int i = 9; i < 16; ++i)
    id.bytes[i] = static_cast<std::uint8_t>(rand_b >> (8 * (15 - i)));
  return id;
}

uuid uuid_v7_generator::next() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return next(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

}  // namespace sluice
