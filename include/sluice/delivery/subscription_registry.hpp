#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/delivery/subscription.hpp"

namespace sluice::delivery {

// The subscriptions this instance knows (all of sluice_subscriptions, kept equal to it by the
// subscription_follower). Readers get immutable snapshots, so a delivery keeps the definition it
// started with while a reload replaces it. Loop-thread only.
class subscription_registry {
 public:
  using snapshot = std::shared_ptr<const subscription>;
  // Runs after every change of one subscription (added, changed, paused, resumed or removed).
  using change_listener = std::function<void(const std::string& queue, const std::string& name)>;

  snapshot find(std::string_view queue, std::string_view name) const;
  // Sorted by (queue, name).
  std::vector<snapshot> all() const;
  std::vector<snapshot> of_queue(std::string_view queue) const;

  // Replaces everything (a full reload); listeners run for every entry that changed.
  void replace_all(std::vector<subscription> all);
  // Adds or replaces one (listeners run when it differs).
  void put(subscription s);
  // True when it existed.
  bool remove(std::string_view queue, std::string_view name);

  void on_change(change_listener listener);
  // True once the first full reload was applied: before that, "no subscription" is unknown.
  bool loaded() const { return loaded_; }
  std::uint64_t version() const { return version_; }

 private:
  void changed(const std::string& queue, const std::string& name);

  // (queue, name) keys, looked up with string_views without building strings.
  struct key_less {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return std::pair<std::string_view, std::string_view>(a.first, a.second) <
             std::pair<std::string_view, std::string_view>(b.first, b.second);
    }
  };

  std::map<std::pair<std::string, std::string>, snapshot, key_less> entries_;
  std::vector<change_listener> listeners_;
  bool loaded_ = false;
  std::uint64_t version_ = 0;
};

}  // namespace sluice::delivery
