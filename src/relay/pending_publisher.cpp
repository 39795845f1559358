#include "sluice/relay/pending_publisher.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;
using namespace std::chrono_literals;

pending_publisher::pending_publisher(std::size_t max_items, std::size_t max_bytes,
                                     std::chrono::milliseconds defer_after,
                                     std::shared_ptr<amqp::client> client, queue_modes& modes,
                                     topology_declarer& declarer, publish_handoff& handoff,
                                     relay_metrics& metrics)
    : fifo_(max_items, max_bytes),
      defer_after_(defer_after),
      client_(std::move(client)),
      modes_(modes),
      declarer_(declarer),
      handoff_(handoff),
      metrics_(metrics) {}

void pending_publisher::push(std::vector<message> batch) {
  if (!fifo_.push(batch, clock::now())) {
    metrics_.deferred.inc(static_cast<double>(batch.size()));
    if (overflow_log_.allow(clock::now())) {
      spdlog::warn(
          "relay: in-memory queue full items={} bytes={}; {} committed messages left to the "
          "sweeper (similar events not logged: {})",
          fifo_.size(), fifo_.bytes(), batch.size(), overflow_log_.suppressed);
      overflow_log_.suppressed = 0;
    }
    return;
  }
  wake();
}

void pending_publisher::stop(clock::time_point drain_deadline) {
  stopping_ = true;
  drain_deadline_ = drain_deadline;
  wake_.notify_all();
  stop_.notify_all();
}

pending_publisher::clock::time_point pending_publisher::next_deadline() const {
  auto at = fifo_.empty() ? clock::time_point::max() : fifo_.front().enqueued + defer_after_;
  if (stopping_)
    at = std::min(at, drain_deadline_);
  return at;
}

void pending_publisher::defer_aged(clock::time_point now) {
  const std::size_t n = fifo_.drop_enqueued_before(now - defer_after_);
  if (n == 0)
    return;
  metrics_.deferred.inc(static_cast<double>(n));
  if (deferred_log_.allow(now)) {
    spdlog::warn(
        "relay: {} messages waited over {} ms in memory (RabbitMQ {}); left to the sweeper "
        "(similar events not logged: {})",
        n, defer_after_.count(), amqp::to_string(client_->state()), deferred_log_.suppressed);
    deferred_log_.suppressed = 0;
  }
}

asio::awaitable<void> pending_publisher::run() {
  while (true) {
    const auto now = clock::now();
    if (stopping_ && (fifo_.empty() || now >= drain_deadline_ || !connected()))
      break;
    defer_aged(now);
    if (fifo_.empty() || !modes_.loaded() || !handoff_.window_open()) {
      // Every event that can unblock this loop wakes it; the deadline is only the moment the
      // front message is due for the sweeper.
      co_await wake_.wait_until(next_deadline());
      continue;
    }
    declarer_.sync_connection();
    const queue_mode mode = modes_.mode_of(fifo_.front().msg.queue);
    if (!declarer_.is_declared(fifo_.front().msg, mode)) {
      const std::string queue = fifo_.front().msg.queue;
      auto target = target_of(fifo_.front().msg, mode);
      const auto outcome = co_await declarer_.declare(std::move(target));
      if (outcome == topology_declarer::outcome::retry) {
        // A pause that is meant (the channel or connection is not there yet), on stop_: every
        // push would end it early on wake_.
        co_await stop_.wait_until(clock::now() + 100ms);
      } else if (outcome == topology_declarer::outcome::refused && !fifo_.empty() &&
                 fifo_.front().msg.queue == queue) {
        fifo_.pop();
        metrics_.failed.inc();
      }
      continue;
    }
    auto entry = fifo_.pop();
    co_await handoff_.send(std::move(entry.msg), mode);
  }
}

}  // namespace sluice::relay
