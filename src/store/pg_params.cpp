#include "sluice/store/pg_params.hpp"

#include "sluice/store/pg_binary.hpp"

namespace sluice::store {

void pg_params::add_text(std::string_view value, oid type) {
  slots_.push_back({arena_.size(), static_cast<int>(value.size()), type, false});
  arena_.append(value);
  arena_.push_back('\0');
}

void pg_params::add_binary(std::string_view bytes, oid type) {
  slots_.push_back({arena_.size(), static_cast<int>(bytes.size()), type, true});
  arena_.append(bytes);
}

void pg_params::add_null(oid type) {
  slots_.push_back({arena_.size(), -1, type, false});
}

void pg_params::add(std::int32_t value) {
  std::string bytes;
  pg_binary::put_int32(bytes, value);
  add_binary(bytes, pg_type::int4);
}

void pg_params::add(std::int64_t value) {
  std::string bytes;
  pg_binary::put_int64(bytes, value);
  add_binary(bytes, pg_type::int8);
}

void pg_params::add(const uuid& value) {
  add_binary(
      std::string_view(reinterpret_cast<const char*>(value.bytes.data()), value.bytes.size()),
      pg_type::uuid);
}

void pg_params::clear() {
  arena_.clear();
  slots_.clear();
}

const char* pg_params::value(std::size_t i) const {
  return slots_[i].length < 0 ? nullptr : arena_.data() + slots_[i].offset;
}

}  // namespace sluice::store
