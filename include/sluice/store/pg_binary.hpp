#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/core/uuid.hpp"
#include "sluice/store/pg_params.hpp"

// Encoders for PostgreSQL's binary send/receive formats (big-endian integers; see the
// *_send/*_recv functions of src/backend/utils/adt). Binary parameters skip escaping and text
// parsing on both sides, which is what makes one `unnest` statement per batch cheap.
namespace sluice::store::pg_binary {

void put_int32(std::string& out, std::int32_t value);
void put_int64(std::string& out, std::int64_t value);

// timestamptz on the wire: microseconds since 2000-01-01 00:00:00 UTC.
std::int64_t timestamptz_from_unix_ms(std::int64_t unix_ms);
std::int64_t timestamptz_from_unix_us(std::int64_t unix_us);

// A one-dimensional array in binary format:
//   int32 ndim (1, or 0 when empty) | int32 has_nulls | oid element type |
//   int32 length | int32 lower bound (1) | per element: int32 byte length (-1 = NULL), bytes
class array_builder {
 public:
  explicit array_builder(oid element_type, std::size_t reserve_bytes = 0);

  void add(std::string_view element_bytes);
  void add_null();
  void add_int64(std::int64_t value);
  void add_uuid(const uuid& value);
  std::size_t size() const { return count_; }

  // The finished array; patches the header, so call after the last add.
  std::string_view bytes();

 private:
  oid element_type_;
  std::string out_;
  std::int32_t count_ = 0;
  bool has_null_ = false;
};

}  // namespace sluice::store::pg_binary
