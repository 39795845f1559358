#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "sluice/core/uuid.hpp"
#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

// One bulk re-drive (POST /api/v1/dlq/retry), a row of sluice_dlq_jobs.
struct dlq_job {
  uuid id;
  dead_letter_filter filter;
  bool dry_run = false;
  std::optional<std::int32_t> rate_per_sec;  // nullopt: as fast as the batches go
  std::int64_t matched = 0;   // rows matching the filter, dead no later than the job's creation
  std::int64_t redriven = 0;  // rows moved so far
  std::string state;          // running, done, failed, cancelled
  std::optional<std::string> error;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::optional<std::int64_t> finished_ms;
};

// What one batch of a job did.
struct dlq_batch_result {
  enum class outcome {
    moved,     // rows moved; the job goes on
    finished,  // the job is done (this batch may have moved rows too)
    busy,      // another instance holds the job's row (it runs this batch)
    not_due,   // the job's rate allows the next batch only after `wait`
    gone,      // no running job with this id
    failed,    // see status
  };
  outcome result = outcome::failed;
  dlq_status status;
  std::int64_t moved = 0;
  // not_due: until the batch is due; moved: until the next one is (0 without a rate).
  std::chrono::milliseconds wait{0};
};

// The rows of one batch for a rate: a fifth of a second's worth (so pacing stays smooth), at
// least 1 and at most batch_max; without a rate, batch_max.
std::size_t dlq_batch_size(std::optional<std::int32_t> rate_per_sec, std::size_t batch_max);

// sluice_dlq_jobs (migration 6). A job's progress lives only in its row: each batch locks the
// row (FOR UPDATE SKIP LOCKED, so two instances never run the same batch), moves the next rows
// after the row's cursor in (dead_at, id) order, advances the cursor and the count and commits,
// all in one transaction; a crash loses at most an uncommitted batch, which the next runner
// repeats exactly.
class dlq_job_store {
 public:
  explicit dlq_job_store(store::pg_pool& pool);

  // Inserts a job with matched = the rows matching `filter` dead no later than now() (the
  // job's not_after), in one statement. A dry run, or a job that matches nothing, is done at
  // once.
  boost::asio::awaitable<std::tuple<dlq_status, dlq_job>> create(
      const dead_letter_filter& filter, bool dry_run, std::optional<std::int32_t> rate_per_sec,
      store::clock::time_point deadline);

  boost::asio::awaitable<std::tuple<dlq_status, std::optional<dlq_job>>> get(
      const uuid& id, store::clock::time_point deadline);

  // Ids of running jobs, oldest first.
  boost::asio::awaitable<std::tuple<dlq_status, std::vector<uuid>>> running(
      store::clock::time_point deadline);

  // Runs the job's next batch (see the class comment). Each batch holds dlq_batch_size() rows
  // for the job's rate; batches of a paced job are due one batch-size/rate apart, measured on
  // PostgreSQL's clock from the job row's updated_at, so the rate holds whichever instances
  // run the batches.
  boost::asio::awaitable<dlq_batch_result> run_batch(const uuid& id, std::size_t batch_max,
                                                     store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
  uuid_v7_generator ids_;
};

}  // namespace sluice::delivery
