#include "sluice/delivery/dlq_job_runner.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace sluice::delivery {
namespace asio = boost::asio;

dlq_job_runner::dlq_job_runner(dlq_job_store& jobs, dead_letter_store& letters,
                               metrics::registry& metrics, dlq_job_runner_options options)
    : jobs_(jobs),
      letters_(letters),
      options_(options),
      records_(metrics.add_gauge("sluice_dlq_records",
                                 "Dead letters in PostgreSQL, per queue (refreshed every few "
                                 "seconds).",
                                 {"queue"})),
      redriven_total_(metrics
                          .add_counter("sluice_dlq_redriven_total",
                                       "Dead letters moved back to delivery by bulk re-drive "
                                       "jobs run on this instance.")
                          .get()) {}

void dlq_job_runner::wake(const uuid& job) {
  due_.try_emplace(job, clock::now());
  wake_.notify_all();
}

void dlq_job_runner::stop() {
  stopping_ = true;
  wake_.notify_all();
}

asio::awaitable<void> dlq_job_runner::run() {
  using outcome = dlq_batch_result::outcome;
  auto next_poll = clock::now();
  auto next_gauge = clock::now();
  bool failing = false;
  while (!stopping_) {
    if (clock::now() >= next_poll) {
      co_await poll_jobs();
      next_poll = clock::now() + options_.poll_interval;
      continue;
    }
    if (clock::now() >= next_gauge) {
      co_await refresh_gauge();
      next_gauge = clock::now() + options_.gauge_interval;
      continue;
    }
    // The job due first; unpaced jobs come back due at once, so several take turns.
    const auto first = std::min_element(
        due_.begin(), due_.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    if (first == due_.end() || first->second > clock::now()) {
      auto wake_at = std::min(next_poll, next_gauge);
      if (first != due_.end())
        wake_at = std::min(wake_at, first->second);
      co_await wake_.wait_until(wake_at);
      continue;
    }
    const uuid id = first->first;
    const auto r = co_await jobs_.run_batch(id, options_.batch_max,
                                            store::clock::now() + options_.statement_timeout);
    const auto now = clock::now();
    if (r.moved > 0) {
      moved_ += r.moved;
      redriven_total_.inc(static_cast<double>(r.moved));
      if (on_redriven_)
        on_redriven_(r.moved);
    }
    switch (r.result) {
      case outcome::moved:
        due_[id] = now + r.wait;
        break;
      case outcome::not_due:
        due_[id] = now + r.wait;
        break;
      case outcome::busy:
        // Another instance runs it; should that one die, its lock goes and this one goes on.
        due_[id] = now + options_.poll_interval;
        break;
      case outcome::finished:
        spdlog::info("delivery: dlq re-drive job {} done", id.to_string());
        due_.erase(id);
        break;
      case outcome::gone:
        due_.erase(id);
        break;
      case outcome::failed:
        if (!failing) {
          spdlog::warn("delivery: dlq re-drive job {} batch failed, retrying error=\"{}\"",
                       id.to_string(), r.status.message);
        }
        due_[id] = now + options_.retry_delay;
        break;
    }
    failing = r.result == outcome::failed;
  }
}

asio::awaitable<void> dlq_job_runner::poll_jobs() {
  const auto [status, ids] =
      co_await jobs_.running(store::clock::now() + options_.statement_timeout);
  if (status) {
    spdlog::debug("delivery: dlq jobs not read error=\"{}\"", status.message);
    co_return;
  }
  // Jobs are only added here: one that finished elsewhere answers "gone" to its next batch.
  for (const uuid& id : ids)
    due_.try_emplace(id, clock::now());
}

asio::awaitable<void> dlq_job_runner::refresh_gauge() {
  const auto [status, counts] =
      co_await letters_.count_by_queue(store::clock::now() + options_.statement_timeout);
  if (status) {
    spdlog::debug("delivery: dlq records not counted error=\"{}\"", status.message);
    co_return;
  }
  std::set<std::string> seen;
  for (const auto& [queue, n] : counts) {
    records_.with({queue}).set(static_cast<double>(n));
    seen.insert(queue);
  }
  // A queue whose dead letters are all gone reads 0 rather than its last count.
  for (const auto& queue : gauge_queues_) {
    if (!seen.contains(queue))
      records_.with({queue}).set(0);
  }
  gauge_queues_.insert(seen.begin(), seen.end());
}

}  // namespace sluice::delivery
