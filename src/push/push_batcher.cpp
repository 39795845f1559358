#include "sluice/push/push_batcher.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace sluice::push {

namespace asio = boost::asio;

namespace {
const char* outcome_label(store::failure_kind f) {
  switch (f) {
    case store::failure_kind::none:
      return "ok";
    case store::failure_kind::unavailable:
      return "unavailable";
    case store::failure_kind::rejected:
      return "rejected";
    case store::failure_kind::overloaded:
      return "overloaded";
  }
  return "unknown";
}
}  // namespace

struct push_batcher::pending {
  explicit pending(asio::any_io_executor ex, std::vector<message>& m, std::size_t b)
      : items(m), bytes(b), wake(std::move(ex), asio::steady_timer::time_point::max()) {}
  std::vector<message>& items;
  std::size_t bytes;
  // Runs in a round trip of its own: it was in one that ran out of time, and only alone does
  // it show whether it is the request stuck on a lock or a bystander of it.
  bool solo = false;
  batch_result result;
  bool done = false;
  asio::steady_timer wake;  // cancelled when `done` is set
};

struct push_batcher::stall_watch {
  explicit stall_watch(asio::any_io_executor ex) : timer(std::move(ex)) {}
  asio::steady_timer timer;
  bool armed = false;
};

push_batcher::push_batcher(asio::any_io_executor executor, store::message_writer& store,
                           batcher_options options, metrics::registry& metrics)
    : executor_(std::move(executor)),
      store_(store),
      options_(options),
      batch_rows_(metrics
                      .add_histogram("sluice_db_batch_rows",
                                     "Rows per PostgreSQL insert round trip.", {"source"},
                                     metrics::size_buckets())
                      .with({"push"})),
      insert_seconds_(metrics
                          .add_histogram("sluice_db_insert_duration_seconds",
                                         "Duration of one PostgreSQL insert round trip.",
                                         {"source"}, metrics::latency_buckets())
                          .with({"push"})),
      batches_(metrics.add_counter("sluice_db_batches_total",
                                   "PostgreSQL insert round trips by outcome.",
                                   {"source", "outcome"})),
      stall_(std::make_unique<stall_watch>(executor_)) {
  auto& queued =
      metrics.add_gauge("sluice_push_queue_items", "Items waiting for a PostgreSQL round trip.")
          .get();
  metrics.on_collect([this, &queued] { queued.set(static_cast<double>(queued_items_)); });
}

push_batcher::~push_batcher() = default;

asio::awaitable<batch_result> push_batcher::submit(std::vector<message>& items) {
  std::size_t bytes = 0;
  for (const auto& m : items)
    bytes += m.payload.size() + m.queue.size() + m.partition.size();
  if (queued_items_ + items.size() > options_.max_queued_items) {
    co_return batch_result{
        store::failure_kind::overloaded,
        "push queue is full (" + std::to_string(options_.max_queued_items) + " items)",
        {}};
  }
  // A request alone in an empty queue always gets in: the body limit bounds it already.
  if (queued_bytes_ > 0 && queued_bytes_ + bytes > options_.max_queued_bytes) {
    co_return batch_result{
        store::failure_kind::overloaded,
        "push queue is full (" + std::to_string(options_.max_queued_bytes) + " bytes)",
        {}};
  }
  pending p(executor_, items, bytes);
  queue_.push_back(&p);
  queued_items_ += items.size();
  queued_bytes_ += bytes;
  start_batches();
  // The batch may already have finished (an immediate failure completes without suspending).
  if (!p.done)
    co_await p.wake.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return std::move(p.result);
}

bool push_batcher::may_start_another() const {
  return inflight_ == 0 || queued_items_ >= options_.parallel_min_rows ||
         std::chrono::steady_clock::now() - last_started_ >= options_.stall_after;
}

// Items wait behind a running round trip: look again once it has been out for stall_after,
// so one slow round trip cannot hold the rest back for long.
void push_batcher::watch_stall() {
  if (stall_->armed || queue_.empty() || inflight_ >= options_.max_inflight_batches)
    return;
  stall_->armed = true;
  stall_->timer.expires_at(last_started_ + options_.stall_after);
  stall_->timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted)
      return;  // the batcher may be gone
    stall_->armed = false;
    start_batches();
  });
}

void push_batcher::start_batches() {
  while (inflight_ < options_.max_inflight_batches && !queue_.empty() && may_start_another()) {
    std::vector<pending*> group;
    std::size_t rows = 0;
    while (!queue_.empty()) {
      const pending* next = queue_.front();
      if (!group.empty() && (group.front()->solo || next->solo ||
                             rows + next->items.size() > options_.max_batch_rows))
        break;
      rows += queue_.front()->items.size();
      queued_bytes_ -= queue_.front()->bytes;
      group.push_back(queue_.front());
      queue_.pop_front();
    }
    queued_items_ -= rows;
    ++inflight_;
    last_started_ = std::chrono::steady_clock::now();
    // run_batch catches what it can; this is the last resort, so the failure is at least seen.
    asio::co_spawn(executor_, run_batch(std::move(group)), [](std::exception_ptr e) {
      if (e)
        spdlog::critical("push: a batch ended with an exception it could not handle");
    });
  }
  watch_stall();
}

asio::awaitable<void> push_batcher::run_batch(std::vector<pending*> group) {
  std::vector<message> batch;
  std::size_t rows = 0;
  for (auto* p : group)
    rows += p->items.size();
  batch.reserve(rows);
  for (auto* p : group)
    std::move(p->items.begin(), p->items.end(), std::back_inserter(batch));

  const auto started = std::chrono::steady_clock::now();
  store::insert_result res;
  try {
    res = co_await store_.insert_batch(batch, started + options_.deadline);
  } catch (const std::exception& e) {
    // Whether the transaction committed is unknown: like a lost connection. The items keep
    // their ids, so storing them again (replay) deduplicates.
    res = store::insert_result{};
    res.ec = std::make_error_code(std::errc::io_error);
    res.message = std::string("the insert failed with an exception: ") + e.what();
  }
  insert_seconds_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  batch_rows_.observe(static_cast<double>(rows));
  try {
    finish_batch(group, batch, res, rows);
  } catch (const std::exception& e) {
    // Every request must get an answer, and none may fail over with items that were moved
    // away: what is left is refused (503), nothing stored by sluice's doing.
    spdlog::critical("push: handing a batch's results back failed: {}", e.what());
    for (auto* p : group) {
      if (p->done)
        continue;
      p->result = batch_result{store::failure_kind::overloaded, "internal error", {}};
      p->done = true;
      p->wake.cancel();
    }
  }
  --inflight_;
  start_batches();
}

void push_batcher::finish_batch(std::vector<pending*>& group, std::vector<message>& batch,
                                const store::insert_result& res, std::size_t rows) {
  // Hand every request its items (and outcomes) back.
  std::size_t offset = 0;
  std::vector<pending*> retry;
  const auto failure = res.failure();
  const bool slow =
      failure == store::failure_kind::unavailable && store::is_slow_statement(res.ec, res.sqlstate);
  for (auto* p : group) {
    const std::size_t n = p->items.size();
    std::move(batch.begin() + static_cast<std::ptrdiff_t>(offset),
              batch.begin() + static_cast<std::ptrdiff_t>(offset + n), p->items.begin());
    if (failure == store::failure_kind::none) {
      p->result.items.assign(res.items.begin() + static_cast<std::ptrdiff_t>(offset),
                             res.items.begin() + static_cast<std::ptrdiff_t>(offset + n));
    } else if (failure == store::failure_kind::rejected && res.rejected_index &&
               !(*res.rejected_index >= offset && *res.rejected_index < offset + n)) {
      retry.push_back(p);  // innocent bystander of another request's bad data
      offset += n;
      continue;
    } else if (slow && group.size() > 1) {
      // One request waiting on a lock makes the whole round trip time out: each is tried
      // alone, so only the one that times out by itself is refused.
      p->solo = true;
      retry.push_back(p);
      offset += n;
      continue;
    } else {
      p->result.failure = failure;
      p->result.message = res.message.empty() ? res.ec.message() : res.message;
      p->result.slow_statement = slow;
    }
    offset += n;
    p->done = true;
    p->wake.cancel();
  }
  batches_.with({"push", outcome_label(failure)}).inc();
  if (failure != store::failure_kind::none) {
    if (const auto suppressed = failure_log_.admit()) {
      spdlog::warn("push: batch of {} rows failed: {} ({} more such failures not logged)", rows,
                   res.message.empty() ? res.ec.message() : res.message, *suppressed);
    }
  }
  for (auto it = retry.rbegin(); it != retry.rend(); ++it) {
    queue_.push_front(*it);
    queued_items_ += (*it)->items.size();
    queued_bytes_ += (*it)->bytes;
  }
}

}  // namespace sluice::push
