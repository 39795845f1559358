#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/api/readiness_verdict.hpp"
#include "sluice/http/message.hpp"
#include "sluice/metrics/registry.hpp"

namespace sluice::api {

// The checks /health/ready reports on. Each module registers a check that answers from state
// it already tracks (or that a watch keeps fresh, such as postgres_watch): a check runs on the
// loop for every probe and every /metrics collect, so it must not block or wait.
class readiness {
 public:
  using check = std::function<check_result()>;

  // Registers sluice_ready, set by every evaluate(), so a scrape reads it fresh even when
  // nothing probes.
  explicit readiness(metrics::registry& metrics);
  readiness(const readiness&) = delete;
  readiness& operator=(const readiness&) = delete;

  void add(std::string name, check c);

  struct report {
    readiness_verdict verdict;
    std::vector<std::pair<std::string, check_result>> checks;  // in the order added
  };
  // Runs every check (one that throws fails), sets sluice_ready and logs a change of status.
  report evaluate(bool strict = false) const;

  // The /health/ready answer: {"status":…,"checks":{name:{"ok":…,"detail":…}}}.
  http::response respond(bool strict) const;

 private:
  std::vector<std::pair<std::string, check>> checks_;
  metrics::gauge& ready_gauge_;
  mutable std::optional<readiness_status> last_status_;
};

}  // namespace sluice::api
