#pragma once

#include <optional>
#include <span>
#include <string>

namespace sluice::api {

struct check_result {
  bool ok = false;
  std::string detail;  // shown to operators: why it failed, or a short state
  // Set only by the checks of a place a durable push can be acknowledged from (PostgreSQL, the
  // file buffer): whether it can take one now. A failing check may still take pushes (a buffer
  // nearly full has room left). Checks that leave it empty add to the body, never to the code.
  std::optional<bool> takes_pushes;
};

enum class readiness_status { ready, degraded, not_ready };
const char* to_string(readiness_status s);
// The value of sluice_ready: 1, 0.5, 0.
double gauge_value(readiness_status s);

struct readiness_verdict {
  readiness_status status = readiness_status::not_ready;
  int http_status = 503;
};

// Readiness means "this instance can acknowledge durable pushes", so only the checks that take
// pushes decide the code. ready: every check passes. degraded: some check fails, but one of
// them can take a push. not_ready: none can (nor when no check takes pushes at all). The code
// is 200 unless not_ready; with `strict`, 503 unless ready.
readiness_verdict decide_readiness(std::span<const check_result> checks, bool strict);

}  // namespace sluice::api
