#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/services/service.hpp"

namespace sluice::services {

// The services this instance knows, layered by source: a name defined by SERVICES_FILE hides
// the same name stored through the API, which hides the environment's service. Readers get
// immutable snapshots, so a request keeps the definition it started with while a reload
// replaces it. Loop-thread only.
class service_registry {
 public:
  using snapshot = std::shared_ptr<const service>;
  // Runs after every change with the name that changed (its effective definition may now be
  // another layer's, or none).
  using change_listener = std::function<void(const std::string& name)>;

  snapshot find(std::string_view name) const;
  // Effective services, sorted by name.
  std::vector<snapshot> all() const;

  // Replaces every service of `source` (a file reload, a full reload from PostgreSQL).
  void replace_source(service_source source, std::vector<service> defined);
  // Adds or replaces one service; its `source` field says the layer.
  void put(service defined);
  // Removes one service of one layer; true when it existed there.
  bool remove(service_source source, std::string_view name);
  // The definition `source` holds for `name`, hidden or not.
  snapshot find_in(service_source source, std::string_view name) const;

  void on_change(change_listener listener);
  // Bumped by every change that altered an effective definition.
  std::uint64_t version() const { return version_; }

 private:
  using layer = std::map<std::string, snapshot, std::less<>>;
  layer& layer_of(service_source source);
  const layer& layer_of(service_source source) const;
  void changed(const std::string& name, const snapshot& before);

  layer env_;
  layer api_;
  layer file_;
  std::vector<change_listener> listeners_;
  std::uint64_t version_ = 0;
};

}  // namespace sluice::services
