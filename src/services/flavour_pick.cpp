#include "sluice/services/flavour_pick.hpp"

#include <cstdint>

#include "sluice/core/stable_hash.hpp"

namespace sluice::services {
namespace {

__extension__ using uint128 = unsigned __int128;

const flavour* default_of(const service& s) {
  if (const flavour* f = s.find_flavour(s.default_flavour))
    return f;
  return s.flavours.empty() ? nullptr : &s.flavours.front();
}

}  // namespace

const flavour* pick_flavour(const service& s, std::string_view request_key,
                            std::chrono::system_clock::time_point now) {
  if (!s.traffic || now >= s.traffic->valid_until)
    return default_of(s);
  // A schedule may outlive a flavour removed later by a service update: such entries get no
  // traffic rather than a share that would fall on the default.
  std::uint64_t total = 0;
  for (const auto& w : s.traffic->flavours) {
    if (w.weight > 0 && s.find_flavour(w.name))
      total += w.weight;
  }
  if (total == 0)
    return default_of(s);
  // The hash scaled onto [0, total) by its high bits (multiply-shift): no modulo bias worth
  // measuring for totals up to 10^8, and the same key always lands at the same point, so with
  // unchanged weights it always picks the same flavour.
  const std::uint64_t h = stable_hash64(request_key);
  const auto point = static_cast<std::uint64_t>((static_cast<uint128>(h) * total) >> 64);
  std::uint64_t upto = 0;
  for (const auto& w : s.traffic->flavours) {
    if (w.weight == 0)
      continue;
    const flavour* f = s.find_flavour(w.name);
    if (!f)
      continue;
    upto += w.weight;
    if (point < upto)
      return f;
  }
  return default_of(s);
}

}  // namespace sluice::services
