#pragma once

#include <compare>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sluice::amqp {

// AMQP field tables: queue/exchange arguments (x-queue-type, x-message-ttl, ...) and message
// headers. Every wire type RabbitMQ sends maps to its own alternative so headers written by
// other clients survive a decode/encode round trip unchanged.

struct decimal {
  std::uint8_t decimals = 0;
  std::uint32_t value = 0;
  friend bool operator==(const decimal&, const decimal&) = default;
};

// AMQP timestamps are seconds since the Unix epoch.
struct timestamp {
  std::uint64_t seconds = 0;
  friend bool operator==(const timestamp&, const timestamp&) = default;
};

// The 'x' byte-array type, kept apart from strings (which are 'S' long strings).
struct byte_array {
  std::string bytes;
  friend bool operator==(const byte_array&, const byte_array&) = default;
};

struct field_entry;
struct field_value;
using field_array = std::vector<field_value>;

// Ordered like the wire; keys are unique (set() replaces).
class field_table {
 public:
  field_table() = default;
  field_table(std::initializer_list<field_entry> entries);

  void set(std::string key, field_value value);
  const field_value* find(std::string_view key) const;
  bool erase(std::string_view key);

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  const std::vector<field_entry>& entries() const { return entries_; }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

  friend bool operator==(const field_table& a, const field_table& b);

 private:
  std::vector<field_entry> entries_;
};

struct field_value {
  using variant_type =
      std::variant<std::monostate, bool, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t,
                   std::int32_t, std::uint32_t, std::int64_t, std::uint64_t, float, double, decimal,
                   std::string, byte_array, timestamp, field_array, field_table>;
  variant_type value;

  field_value() = default;
  field_value(bool v) : value(v) {}
  field_value(std::int8_t v) : value(v) {}
  field_value(std::uint8_t v) : value(v) {}
  field_value(std::int16_t v) : value(v) {}
  field_value(std::uint16_t v) : value(v) {}
  field_value(std::int32_t v) : value(v) {}
  field_value(std::uint32_t v) : value(v) {}
  field_value(std::int64_t v) : value(v) {}
  field_value(std::uint64_t v) : value(v) {}
  field_value(float v) : value(v) {}
  field_value(double v) : value(v) {}
  field_value(decimal v) : value(v) {}
  field_value(std::string v) : value(std::move(v)) {}
  field_value(std::string_view v) : value(std::string(v)) {}
  field_value(const char* v) : value(std::string(v)) {}
  field_value(byte_array v) : value(std::move(v)) {}
  field_value(timestamp v) : value(v) {}
  field_value(field_array v) : value(std::move(v)) {}
  field_value(field_table v) : value(std::move(v)) {}

  template <class T>
  const T* get_if() const {
    return std::get_if<T>(&value);
  }
  bool is_void() const { return std::holds_alternative<std::monostate>(value); }

  friend bool operator==(const field_value& a, const field_value& b) { return a.value == b.value; }
};

struct field_entry {
  std::string key;
  field_value value;
  friend bool operator==(const field_entry&, const field_entry&) = default;
};

inline field_table::field_table(std::initializer_list<field_entry> entries) {
  for (const auto& e : entries) {
    set(e.key, e.value);
  }
}

inline bool operator==(const field_table& a, const field_table& b) {
  return a.entries_ == b.entries_;
}

}  // namespace sluice::amqp
