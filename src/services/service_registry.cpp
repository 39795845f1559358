#include "sluice/services/service_registry.hpp"

#include <set>

namespace sluice::services {

const char* to_string(service_source source) {
  switch (source) {
    case service_source::env:
      return "env";
    case service_source::api:
      return "api";
    case service_source::file:
      return "file";
  }
  return "unknown";
}

const flavour* service::find_flavour(std::string_view flavour_name) const {
  for (const auto& f : flavours) {
    if (f.name == flavour_name)
      return &f;
  }
  return nullptr;
}

std::string service::exchange() const {
  return namespace_ + "." + name;
}

std::string service::queue(std::string_view flavour_name) const {
  return namespace_ + "." + name + "." + std::string(flavour_name);
}

service_registry::layer& service_registry::layer_of(service_source source) {
  switch (source) {
    case service_source::env:
      return env_;
    case service_source::api:
      return api_;
    case service_source::file:
      break;
  }
  return file_;
}

const service_registry::layer& service_registry::layer_of(service_source source) const {
  return const_cast<service_registry*>(this)->layer_of(source);
}

service_registry::snapshot service_registry::find(std::string_view name) const {
  for (const layer* l : {&file_, &api_, &env_}) {
    if (const auto it = l->find(name); it != l->end())
      return it->second;
  }
  return nullptr;
}

std::vector<service_registry::snapshot> service_registry::all() const {
  std::set<std::string, std::less<>> names;
  for (const layer* l : {&file_, &api_, &env_}) {
    for (const auto& [name, s] : *l)
      names.insert(name);
  }
  std::vector<snapshot> out;
  out.reserve(names.size());
  for (const auto& name : names)
    out.push_back(find(name));
  return out;
}

service_registry::snapshot service_registry::find_in(service_source source,
                                                     std::string_view name) const {
  const layer& l = layer_of(source);
  const auto it = l.find(name);
  return it == l.end() ? nullptr : it->second;
}

void service_registry::replace_source(service_source source, std::vector<service> defined) {
  layer& l = layer_of(source);
  std::map<std::string, snapshot> before;
  std::set<std::string> touched;
  for (const auto& [name, s] : l)
    touched.insert(name);
  for (const auto& s : defined)
    touched.insert(s.name);
  for (const auto& name : touched)
    before[name] = find(name);
  l.clear();
  for (auto& s : defined) {
    s.source = source;
    auto name = s.name;
    l[name] = std::make_shared<const service>(std::move(s));
  }
  for (const auto& name : touched)
    changed(name, before[name]);
}

void service_registry::put(service defined) {
  const std::string name = defined.name;
  const snapshot before = find(name);
  layer& l = layer_of(defined.source);
  l[name] = std::make_shared<const service>(std::move(defined));
  changed(name, before);
}

bool service_registry::remove(service_source source, std::string_view name) {
  layer& l = layer_of(source);
  const auto it = l.find(name);
  if (it == l.end())
    return false;
  const std::string key = it->first;
  const snapshot before = find(key);
  l.erase(it);
  changed(key, before);
  return true;
}

void service_registry::on_change(change_listener listener) {
  listeners_.push_back(std::move(listener));
}

void service_registry::changed(const std::string& name, const snapshot& before) {
  // A replaced layer re-creates every snapshot; only a different effective pointer is a change
  // for readers, but a re-read of the same content still counts (listeners compare if needed).
  if (find(name) == before)
    return;
  ++version_;
  for (const auto& listener : listeners_)
    listener(name);
}

}  // namespace sluice::services
