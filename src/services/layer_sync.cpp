#include "sluice/services/layer_sync.hpp"

#include <set>
#include <string>

namespace sluice::services {

bool put_if_changed(service_registry& registry, service s) {
  const auto current = registry.find_in(s.source, s.name);
  if (current && *current == s)
    return false;
  registry.put(std::move(s));
  return true;
}

std::size_t sync_layer(service_registry& registry, service_source source,
                       std::vector<service> defined) {
  std::set<std::string, std::less<>> names;
  std::size_t changed = 0;
  for (auto& s : defined) {
    s.source = source;
    names.insert(s.name);
    if (put_if_changed(registry, std::move(s)))
      ++changed;
  }
  // all() lists every name of every layer, so a hidden entry of `source` is found too.
  std::vector<std::string> gone;
  for (const auto& s : registry.all()) {
    if (!names.contains(s->name) && registry.find_in(source, s->name))
      gone.push_back(s->name);
  }
  for (const auto& name : gone) {
    if (registry.remove(source, name))
      ++changed;
  }
  return changed;
}

}  // namespace sluice::services
