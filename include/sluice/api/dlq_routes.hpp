#pragma once

#include <chrono>
#include <functional>

#include "sluice/delivery/attempt_reader.hpp"
#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/delivery/dlq_job_runner.hpp"
#include "sluice/delivery/dlq_job_store.hpp"
#include "sluice/http/router.hpp"

namespace sluice::api {

struct dlq_api {
  delivery::dead_letter_store& letters;
  delivery::dlq_job_store& jobs;
  delivery::attempt_reader& attempts;
  // Runs new jobs at once; null on an instance without the workers role (a workers instance
  // finds the job by its poll).
  delivery::dlq_job_runner* runner = nullptr;
  // After a single re-drive: wakes the local retry scheduler. May be empty.
  std::function<void()> on_redriven;
  std::chrono::milliseconds statement_timeout{5'000};
};

// Dead letters, re-drive and attempt records (README, "Delivery: dead letters and re-drive"):
//   GET    /api/v1/dlq?queue=&subscription=&start_time=&end_time=&limit=&cursor=
//   GET    /api/v1/dlq/{id}[?queue=&subscription=]   409 ambiguous when several rows match
//   POST   /api/v1/dlq/{id}/retry[?queue=&subscription=]   202
//   DELETE /api/v1/dlq/{id}[?queue=&subscription=]   204
//   POST   /api/v1/dlq/retry {"queue","subscription","start_time","end_time","dryRun",
//          "ratePerSec"}   202 {"job","matched"} (dry run: 200)
//   GET    /api/v1/dlq/jobs/{job}
//   GET    /api/v1/messages/{id}/deliveries?limit=&cursor=
// `api`'s references must outlive the router.
void add_dlq_routes(http::router& routes, const dlq_api& api);

}  // namespace sluice::api
