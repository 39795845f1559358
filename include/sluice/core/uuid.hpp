#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

// A 128-bit UUID. sluice mints version 7 (RFC 9562): 48-bit Unix milliseconds first, so ids
// sort by acceptance time and index well in PostgreSQL.
struct uuid {
  std::array<std::uint8_t, 16> bytes{};

  std::string to_string() const;  // canonical lower-case 8-4-4-4-12 form
  static std::optional<uuid> parse(std::string_view text);
  std::int64_t unix_ms() const;  // the timestamp of a v7 id

  friend auto operator<=>(const uuid&, const uuid&) = default;
};

// For unordered containers of ids.
struct uuid_hash {
  std::size_t operator()(const uuid& id) const noexcept;
};

// Mints uuidv7 ids that are strictly increasing within this generator, even for many ids in
// the same millisecond or when the wall clock steps back (RFC 9562 §6.2 method 3: the
// 12-bit rand_a field continues as a counter; on overflow the timestamp is advanced by one).
// Not thread-safe: each thread owns its generator.
class uuid_v7_generator {
 public:
  uuid_v7_generator();
  uuid next(std::int64_t now_unix_ms);
  uuid next();  // uses the system clock

 private:
  std::int64_t last_ms_ = 0;
  std::uint16_t counter_ = 0;
  std::uint64_t rng_state_;
};

}  // namespace sluice
