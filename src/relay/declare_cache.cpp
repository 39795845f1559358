#include "sluice/relay/declare_cache.hpp"

namespace sluice::relay {

bool declare_cache::sync(std::uint64_t generation, const void* connection) {
  if (is_current(generation, connection))
    return false;
  generation_ = generation;
  connection_ = connection;
  forget_all();
  return true;
}

bool declare_cache::contains(std::string_view name, queue_mode mode) const {
  const name_set& set = mode == queue_mode::queue ? queues_ : exchanges_;
  return set.find(name) != set.end();
}

void declare_cache::insert(std::string name, queue_mode mode) {
  (mode == queue_mode::queue ? queues_ : exchanges_).insert(std::move(name));
}

void declare_cache::forget_all() {
  queues_.clear();
  exchanges_.clear();
}

std::string declare_cache::refusal_key(std::string_view name, queue_mode mode) {
  std::string key(to_string(mode));
  key += ' ';
  key += name;
  return key;
}

bool declare_cache::refused(std::string_view name, queue_mode mode, clock::time_point now) {
  const auto it = refused_until_.find(refusal_key(name, mode));
  if (it == refused_until_.end())
    return false;
  if (now < it->second)
    return true;
  refused_until_.erase(it);
  return false;
}

void declare_cache::refuse(std::string_view name, queue_mode mode, clock::time_point until) {
  refused_until_[refusal_key(name, mode)] = until;
}

}  // namespace sluice::relay
