#include "sluice/amqp/field_table.hpp"

#include <algorithm>

namespace sluice::amqp {

void field_table::set(std::string key, field_value value) {
  for (auto& e : entries_) {
    if (e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  entries_.push_back(field_entry{std::move(key), std::move(value)});
}

const field_value* field_table::find(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.key == key) {
      return &e.value;
    }
  }
  return nullptr;
}

bool field_table::erase(std::string_view key) {
  const auto it = std::find_if(entries_.begin(), entries_.end(),
                               [&](const field_entry& e) { return e.key == key; });
  if (it == entries_.end()) {
    return false;
  }
  entries_.erase(it);
  return true;
}

}  // namespace sluice::amqp
