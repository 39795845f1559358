#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/core/uuid.hpp"

namespace sluice::store {

using oid = std::uint32_t;

// Type OIDs of the built-in types sluice binds (fixed in pg_type.dat since PostgreSQL 7).
namespace pg_type {
inline constexpr oid boolean = 16;
inline constexpr oid int8 = 20;
inline constexpr oid int4 = 23;
inline constexpr oid text = 25;
inline constexpr oid json = 114;
inline constexpr oid json_array = 199;
inline constexpr oid int4_array = 1007;
inline constexpr oid text_array = 1009;
inline constexpr oid int8_array = 1016;
inline constexpr oid timestamptz = 1184;
inline constexpr oid timestamptz_array = 1185;
inline constexpr oid uuid = 2950;
inline constexpr oid uuid_array = 2951;
}  // namespace pg_type

// Parameters of one statement. Values are copied into one arena so a statement can be built
// from temporaries and stays valid until it is sent.
class pg_params {
 public:
  // Text format: the server parses `value` as the column's or the cast's type. libpq sends
  // text parameters up to the first NUL, so untrusted text belongs in add_binary(..., text).
  void add_text(std::string_view value, oid type = 0);
  // Binary format: `bytes` must be the type's binary send format (see pg_binary.hpp).
  void add_binary(std::string_view bytes, oid type);
  void add_null(oid type = 0);

  void add(std::int32_t value);
  void add(std::int64_t value);
  void add(const uuid& value);
  // Raw bytes as `text` in binary format: exact length, no NUL truncation; the server still
  // checks the encoding.
  void add_text_bytes(std::string_view value) { add_binary(value, pg_type::text); }

  std::size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }
  void clear();

  // The libpq view of parameter i; pointers are valid until the next add/clear.
  const char* value(std::size_t i) const;
  int length(std::size_t i) const { return slots_[i].length; }
  int format(std::size_t i) const { return slots_[i].binary ? 1 : 0; }
  oid type(std::size_t i) const { return slots_[i].type; }

 private:
  struct slot {
    std::size_t offset;
    int length;  // -1 for NULL
    oid type;
    bool binary;
  };
  std::string arena_;
  std::vector<slot> slots_;
};

}  // namespace sluice::store
