#include "sluice/relay/publish_marker.hpp"

#include <algorithm>

#include "sluice/relay/retry_backoff.hpp"

#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;

publish_marker::publish_marker(asio::any_io_executor executor, relay_store& store,
                               marker_options options)
    : executor_(std::move(executor)), store_(store), options_(options) {}

void publish_marker::add(const uuid& id) {
  const bool was_empty = pending() == 0;
  if (was_empty)
    oldest_added_ = clock::now();
  if (pending() >= options_.max_pending) {
    // Forget the oldest rather than grow without bound.
    const uuid dropped = pending_[head_++];
    ++dropped_total_;
    if (on_settled_)
      on_settled_(std::span<const uuid>(&dropped, 1));
  }
  pending_.push_back(id);
  // The first id arms the loop's interval timer; a full batch goes at once.
  if ((was_empty || pending() >= options_.batch) && wake_.waiters() != 0)
    wake_.notify_all();
}

asio::awaitable<void> publish_marker::run() {
  running_ = true;
  retry_backoff backoff(std::chrono::milliseconds(100), std::chrono::milliseconds(2000));
  while (true) {
    if (stopping_ && (pending() == 0 || clock::now() >= stop_deadline_))
      break;
    if (pending() == 0) {
      // add() and stop() wake it: nothing else can give it work.
      co_await wake_.wait_until(clock::time_point::max());
      continue;
    }
    const auto due = oldest_added_ + options_.interval;
    if (!stopping_ && pending() < options_.batch && clock::now() < due) {
      co_await wake_.wait_until(due);
      continue;
    }
    const std::size_t n = std::min(pending(), options_.max_batch);
    // Copied out: add() may append (and reallocate) while the UPDATE is in flight.
    std::vector<uuid> ids(pending_.begin() + static_cast<std::ptrdiff_t>(head_),
                          pending_.begin() + static_cast<std::ptrdiff_t>(head_ + n));
    const auto deadline = stopping_
                              ? std::min(stop_deadline_, clock::now() + options_.statement_timeout)
                              : clock::now() + options_.statement_timeout;
    const std::uint64_t dropped_before = dropped_total_;
    const mark_result r = co_await store_.mark_published(ids, deadline);
    if (r.ec) {
      const auto failure = backoff.on_failure();
      if (failure.first) {
        spdlog::warn("relay: marking published rows failed ids={} error=\"{}\"; retrying",
                     ids.size(), r.error_text);
      }
      const auto until = clock::now() + failure.pause;
      co_await wake_.wait_until(stopping_ ? std::min(stop_deadline_, until) : until);
      continue;
    }
    if (backoff.on_success())
      spdlog::info("relay: marking published rows works again");
    // add() only appends, and drops from the head only when full: the first of our ids may
    // have been dropped (and reported) meanwhile; the rest are still at the head.
    const auto dropped_meanwhile = static_cast<std::size_t>(dropped_total_ - dropped_before);
    head_ += n - std::min(n, dropped_meanwhile);
    marked_total_ += ids.size();
    if (head_ > pending_.size() / 2) {
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    if (pending() != 0)
      oldest_added_ = clock::now() - options_.interval;  // a backlog: go on at once
    if (on_settled_)
      on_settled_(ids);
  }
  running_ = false;
  done_.notify_all();
}

asio::awaitable<void> publish_marker::stop(clock::time_point deadline) {
  stopping_ = true;
  stop_deadline_ = deadline;
  wake_.notify_all();
  while (running_ && clock::now() < deadline + std::chrono::milliseconds(100))
    co_await done_.wait_until(deadline + std::chrono::milliseconds(100));
  if (pending() != 0) {
    spdlog::warn(
        "relay: {} published rows left unmarked at shutdown; a sweeper publishes them again",
        pending());
  }
}

}  // namespace sluice::relay
