#include "sluice/api/readiness_verdict.hpp"

#include <algorithm>

namespace sluice::api {

const char* to_string(readiness_status s) {
  switch (s) {
    case readiness_status::ready:
      return "ready";
    case readiness_status::degraded:
      return "degraded";
    case readiness_status::not_ready:
      break;
  }
  return "not_ready";
}

double gauge_value(readiness_status s) {
  switch (s) {
    case readiness_status::ready:
      return 1;
    case readiness_status::degraded:
      return 0.5;
    case readiness_status::not_ready:
      break;
  }
  return 0;
}

readiness_verdict decide_readiness(std::span<const check_result> checks, bool strict) {
  const bool takes_pushes = std::any_of(checks.begin(), checks.end(), [](const check_result& c) {
    return c.takes_pushes.value_or(false);
  });
  const bool all_ok =
      std::all_of(checks.begin(), checks.end(), [](const check_result& c) { return c.ok; });
  readiness_verdict v;
  if (!takes_pushes)
    v.status = readiness_status::not_ready;
  else if (all_ok)
    v.status = readiness_status::ready;
  else
    v.status = readiness_status::degraded;
  const bool serves =
      strict ? v.status == readiness_status::ready : v.status != readiness_status::not_ready;
  v.http_status = serves ? 200 : 503;
  return v;
}

}  // namespace sluice::api
