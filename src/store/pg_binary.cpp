#include "sluice/store/pg_binary.hpp"

namespace sluice::store::pg_binary {
namespace {

// 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp epoch, in Unix milliseconds.
constexpr std::int64_t postgres_epoch_unix_ms = 946'684'800'000;
constexpr std::size_t header_size = 20;

void patch_int32(std::string& out, std::size_t at, std::int32_t value) {
  const auto v = static_cast<std::uint32_t>(value);
  out[at] = static_cast<char>(v >> 24);
  out[at + 1] = static_cast<char>(v >> 16);
  out[at + 2] = static_cast<char>(v >> 8);
  out[at + 3] = static_cast<char>(v);
}

}  // namespace

void put_int32(std::string& out, std::int32_t value) {
  const std::size_t at = out.size();
  out.resize(at + 4);
  patch_int32(out, at, value);
}

void put_int64(std::string& out, std::int64_t value) {
  const auto v = static_cast<std::uint64_t>(value);
  put_int32(out, static_cast<std::int32_t>(v >> 32));
  put_int32(out, static_cast<std::int32_t>(v & 0xffffffffu));
}

std::int64_t timestamptz_from_unix_ms(std::int64_t unix_ms) {
  return (unix_ms - postgres_epoch_unix_ms) * 1000;
}

std::int64_t timestamptz_from_unix_us(std::int64_t unix_us) {
  return unix_us - postgres_epoch_unix_ms * 1000;
}

array_builder::array_builder(oid element_type, std::size_t reserve_bytes)
    : element_type_(element_type) {
  out_.reserve(header_size + reserve_bytes);
  out_.resize(header_size);
}

void array_builder::add(std::string_view element_bytes) {
  put_int32(out_, static_cast<std::int32_t>(element_bytes.size()));
  out_.append(element_bytes);
  ++count_;
}

void array_builder::add_null() {
  put_int32(out_, -1);
  has_null_ = true;
  ++count_;
}

void array_builder::add_int64(std::int64_t value) {
  put_int32(out_, 8);
  put_int64(out_, value);
  ++count_;
}

void array_builder::add_uuid(const uuid& value) {
  add(std::string_view(reinterpret_cast<const char*>(value.bytes.data()), value.bytes.size()));
}

std::string_view array_builder::bytes() {
  if (count_ == 0) {
    // array_recv reads an empty array as ndim 0 with no dimension entries.
    out_.resize(12);
    patch_int32(out_, 0, 0);
    patch_int32(out_, 4, 0);
    patch_int32(out_, 8, static_cast<std::int32_t>(element_type_));
    return out_;
  }
  patch_int32(out_, 0, 1);
  patch_int32(out_, 4, has_null_ ? 1 : 0);
  patch_int32(out_, 8, static_cast<std::int32_t>(element_type_));
  patch_int32(out_, 12, count_);
  patch_int32(out_, 16, 1);
  return out_;
}

}  // namespace sluice::store::pg_binary
