#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "sluice/core/log_throttle.hpp"
#include "sluice/core/message.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/store/message_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::push {

struct batcher_options {
  std::size_t max_batch_rows = 500;       // rows per PostgreSQL round trip
  std::size_t max_inflight_batches = 4;   // round trips at once (at most the pool size)
  std::size_t max_queued_items = 50'000;  // beyond this, submit() answers overloaded at once
  // The same in payload bytes: 50,000 items of 1 MiB would otherwise be 50 GB in memory.
  std::size_t max_queued_bytes = 256u << 20;
  std::chrono::milliseconds deadline{5000};
  // A round trip starts alongside a running one only when this many rows wait, or when the
  // newest round trip started `stall_after` ago (it may have finished since; that only delays
  // the extra start by up to stall_after): a commit costs PostgreSQL far more CPU
  // than a row, so small transactions in parallel lose to one larger one that follows
  // (BENCHMARKS.md), while large batches gain from a second backend.
  std::size_t parallel_min_rows = 200;
  std::chrono::milliseconds stall_after{10};
};

struct batch_result {
  store::failure_kind failure = store::failure_kind::none;
  std::string message;                       // why, when failure != none
  std::vector<store::insert_outcome> items;  // per submitted item, when failure == none
  // Unavailable because the statement ran out of time (store::is_slow_statement).
  bool slow_statement = false;
};

// Group commit for the durable push path. Items of concurrent requests queue here and are
// written to PostgreSQL in shared batches: when no round trip is running a batch starts at
// once, so a lone request never waits for company; while one runs, the items that arrive
// meanwhile gather into the next batch (which starts when it completes, or earlier when
// enough rows wait or the running one stalls).
class push_batcher {
 public:
  push_batcher(boost::asio::any_io_executor executor, store::message_writer& store,
               batcher_options options, metrics::registry& metrics);
  ~push_batcher();
  push_batcher(const push_batcher&) = delete;
  push_batcher& operator=(const push_batcher&) = delete;

  // Stores `items` (in order, in one transaction with whatever shares the batch). The items
  // are moved into the batch and moved back before this returns, so the caller still has them
  // for a failover. A request whose data PostgreSQL rejects fails alone: the rest of its batch
  // is retried without it. Always answers: a round trip that throws fails its requests as
  // `unavailable` (the caller's probe then tells a bug from an outage).
  boost::asio::awaitable<batch_result> submit(std::vector<message>& items);

  std::size_t queued_items() const { return queued_items_; }
  std::size_t queued_bytes() const { return queued_bytes_; }
  std::size_t inflight_batches() const { return inflight_; }

 private:
  struct pending;
  void start_batches();
  bool may_start_another() const;
  void watch_stall();
  boost::asio::awaitable<void> run_batch(std::vector<pending*> group);
  void finish_batch(std::vector<pending*>& group, std::vector<message>& batch,
                    const store::insert_result& res, std::size_t rows);

  boost::asio::any_io_executor executor_;
  store::message_writer& store_;
  batcher_options options_;
  std::deque<pending*> queue_;
  std::size_t queued_items_ = 0;
  std::size_t queued_bytes_ = 0;
  std::size_t inflight_ = 0;
  metrics::histogram& batch_rows_;
  metrics::histogram& insert_seconds_;
  metrics::family<metrics::counter>& batches_;
  std::chrono::steady_clock::time_point last_started_;  // of the newest round trip
  struct stall_watch;  // a timer that re-checks may_start_another() after stall_after
  std::unique_ptr<stall_watch> stall_;
  log_throttle failure_log_;
};

}  // namespace sluice::push
