#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "sluice/core/async_event.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/delivery/dlq_job_store.hpp"
#include "sluice/metrics/registry.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

struct dlq_job_runner_options {
  std::size_t batch_max = 500;  // rows per batch (one transaction) without a rate
  // Other instances' jobs, and jobs whose runner died, are found by this poll.
  std::chrono::milliseconds poll_interval{2'000};
  // How often sluice_dlq_records{queue} is refreshed from PostgreSQL.
  std::chrono::milliseconds gauge_interval{5'000};
  std::chrono::milliseconds statement_timeout{5'000};
  // After a failed batch, the job is tried again this much later.
  std::chrono::milliseconds retry_delay{1'000};
};

// Runs the bulk re-drives of every instance (sluice_dlq_jobs): one loop that finds running
// jobs (woken at once by a create on this instance, else by a poll), runs their batches
// (dlq_job_store::run_batch: row lock, move, progress, commit) paced by each job's rate, and
// refreshes the sluice_dlq_records{queue} gauge. Holds no progress of its own: a runner that
// stops mid-job, on this instance or another, leaves a job the next runner continues from its
// cursor. Loop-thread only.
class dlq_job_runner {
 public:
  dlq_job_runner(dlq_job_store& jobs, dead_letter_store& letters, metrics::registry& metrics,
                 dlq_job_runner_options options);
  dlq_job_runner(const dlq_job_runner&) = delete;
  dlq_job_runner& operator=(const dlq_job_runner&) = delete;

  // Called after each batch that moved rows into sluice_delivery_retries (with their count):
  // the daemon wakes the local retry scheduler, so re-drives go out at once rather than at its
  // next poll.
  void on_redriven(std::function<void(std::int64_t)> hook) { on_redriven_ = std::move(hook); }

  // A job created on this instance: runs it without waiting for the poll.
  void wake(const uuid& job);

  // co_spawn it; returns after stop() once the batch in flight, if any, has committed or
  // failed (bounded by the statement timeout).
  boost::asio::awaitable<void> run();
  void stop();

  // Rows this runner moved, over all jobs (tests; the per-job count is in the row).
  std::int64_t moved() const { return moved_; }

 private:
  using clock = std::chrono::steady_clock;

  boost::asio::awaitable<void> poll_jobs();
  boost::asio::awaitable<void> refresh_gauge();

  dlq_job_store& jobs_;
  dead_letter_store& letters_;
  dlq_job_runner_options options_;
  metrics::family<metrics::gauge>& records_;
  metrics::counter& redriven_total_;
  std::set<std::string> gauge_queues_;     // queues the gauge has a series for
  std::map<uuid, clock::time_point> due_;  // running jobs known here, and their next batch
  std::function<void(std::int64_t)> on_redriven_;
  async_event wake_;
  bool stopping_ = false;
  std::int64_t moved_ = 0;
};

}  // namespace sluice::delivery
