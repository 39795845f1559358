#include "sluice/routing/route_lookup.hpp"

namespace sluice::routing {

const char* to_string(resolve_result r) {
  switch (r) {
    case resolve_result::hit:
      return "hit";
    case resolve_result::miss:
      return "miss";
    case resolve_result::negative_hit:
      return "negative_hit";
    case resolve_result::stale:
      return "stale";
    case resolve_result::unavailable:
      return "unavailable";
  }
  return "unavailable";
}

}  // namespace sluice::routing
