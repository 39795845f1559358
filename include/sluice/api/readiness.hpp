#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/api/readiness_verdict.hpp"
#include "sluice/http/message.hpp"
#include "sluice/metrics/registry.hpp"

#include <nlohmann/json.hpp>

namespace sluice::api {

// A check whose object in /health/ready has more fields next to "ok" and "detail" (the
// registry's and the database pool's figures); `fields` is an object.
struct check_with_fields {
  check_result result;
  nlohmann::json fields = nlohmann::json::object();
};

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
  void add_with_fields(std::string name, std::function<check_with_fields()> c);

  struct report {
    readiness_verdict verdict;
    std::vector<std::pair<std::string, check_result>> checks;  // in the order added
    std::vector<nlohmann::json> fields;                        // of each check, in that order
  };
  // Runs every check (one that throws fails), sets sluice_ready and logs a change of status.
  report evaluate(bool strict = false) const;

  // The /health/ready answer: {"status":…,"checks":{name:{"ok":…,"detail":…}}}.
  http::response respond(bool strict) const;

 private:
  std::vector<std::pair<std::string, std::function<check_with_fields()>>> checks_;
  metrics::gauge& ready_gauge_;
  mutable std::optional<readiness_status> last_status_;
};

}  // namespace sluice::api
