#include "sluice/delivery/subscription_registry.hpp"

#include <set>

namespace sluice::delivery {
namespace {

// A listener must run when anything a reader can see differs: the spec and pause state
// (same_as), and the pause reason and update time (shown by the API, and a resume after a pause
// with the same reason is still a change).
bool unchanged(const subscription& a, const subscription& b) {
  return a.same_as(b) && a.paused_reason == b.paused_reason && a.updated_ms == b.updated_ms;
}

}  // namespace

subscription_registry::snapshot subscription_registry::find(std::string_view queue,
                                                            std::string_view name) const {
  const auto it = entries_.find(std::pair<std::string_view, std::string_view>(queue, name));
  return it == entries_.end() ? nullptr : it->second;
}

std::vector<subscription_registry::snapshot> subscription_registry::all() const {
  std::vector<snapshot> out;
  out.reserve(entries_.size());
  for (const auto& [key, s] : entries_)
    out.push_back(s);
  return out;
}

std::vector<subscription_registry::snapshot> subscription_registry::of_queue(
    std::string_view queue) const {
  std::vector<snapshot> out;
  for (auto it = entries_.lower_bound(std::pair<std::string_view, std::string_view>(queue, ""));
       it != entries_.end() && it->first.first == queue; ++it)
    out.push_back(it->second);
  return out;
}

void subscription_registry::replace_all(std::vector<subscription> all) {
  loaded_ = true;
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<std::pair<std::string, std::string>> changes;
  for (auto& s : all) {
    auto key = std::make_pair(s.queue, s.name);
    if (!seen.insert(key).second)
      continue;  // a duplicate key: the first one wins, as with a map insert
    const auto it = entries_.find(key);
    if (it != entries_.end() && unchanged(*it->second, s))
      continue;
    auto snap = std::make_shared<const subscription>(std::move(s));
    if (it == entries_.end())
      entries_.emplace(key, std::move(snap));
    else
      it->second = std::move(snap);
    changes.push_back(std::move(key));
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (seen.contains(it->first)) {
      ++it;
      continue;
    }
    changes.push_back(it->first);
    it = entries_.erase(it);
  }
  // Listeners run after the whole replacement, so each sees the final state of every entry.
  for (const auto& [queue, name] : changes)
    changed(queue, name);
}

void subscription_registry::put(subscription s) {
  auto key = std::make_pair(s.queue, s.name);
  const auto it = entries_.find(key);
  if (it != entries_.end() && unchanged(*it->second, s))
    return;
  auto snap = std::make_shared<const subscription>(std::move(s));
  if (it == entries_.end())
    entries_.emplace(key, std::move(snap));
  else
    it->second = std::move(snap);
  changed(key.first, key.second);
}

bool subscription_registry::remove(std::string_view queue, std::string_view name) {
  const auto it = entries_.find(std::pair<std::string_view, std::string_view>(queue, name));
  if (it == entries_.end())
    return false;
  const auto key = it->first;
  entries_.erase(it);
  changed(key.first, key.second);
  return true;
}

void subscription_registry::on_change(change_listener listener) {
  listeners_.push_back(std::move(listener));
}

void subscription_registry::changed(const std::string& queue, const std::string& name) {
  ++version_;
  // A copy: a listener may register another one.
  const auto listeners = listeners_;
  for (const auto& l : listeners)
    l(queue, name);
}

}  // namespace sluice::delivery
