#include "sluice/delivery/retry_scheduler.hpp"

#include <algorithm>
#include <string>

#include "sluice/core/message.hpp"
#include "sluice/delivery/subscription.hpp"
#include "sluice/relay/message_format.hpp"
#include "sluice/rpc/async_envelope.hpp"

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

namespace sluice::delivery {
namespace asio = boost::asio;

namespace {

// After a round that claimed nothing, the table's next due time is not trusted closer than
// this: a row due "now" that the claim did not see (locked by another claimer for a moment)
// must not make the loop spin.
constexpr std::chrono::milliseconds empty_round_floor{20};

retry_scheduler::clock::time_point steady_at(retry_scheduler::system_clock::time_point t) {
  const auto from_now = t - retry_scheduler::system_clock::now();
  return retry_scheduler::clock::now() +
         std::chrono::duration_cast<retry_scheduler::clock::duration>(from_now);
}

bool is_sluice_header(std::string_view name) {
  return name.starts_with("x-sluice-");
}

metrics::family<metrics::counter>& publishes_family(metrics::registry& registry) {
  return registry.add_counter("sluice_delivery_retry_publishes_total",
                              "Parked deliveries published again when due, by outcome "
                              "(published, returned, nacked, failed); all but published stay "
                              "parked and are published again when their claim runs out.",
                              {"outcome"});
}

}  // namespace

retry_scheduler::metrics_set::metrics_set(metrics::registry& registry)
    : published(publishes_family(registry).with({"published"})),
      returned(publishes_family(registry).with({"returned"})),
      nacked(publishes_family(registry).with({"nacked"})),
      failed(publishes_family(registry).with({"failed"})),
      due(registry
              .add_gauge("sluice_delivery_retries_due",
                         "Parked deliveries the retry scheduler claimed in its last round.")
              .get()),
      rows(registry
               .add_gauge("sluice_delivery_retry_rows",
                          "Parked deliveries waiting in PostgreSQL (claimed or not), counted "
                          "every few seconds.")
               .get()) {}

std::shared_ptr<retry_scheduler> retry_scheduler::create(
    asio::any_io_executor executor, retry_scheduler_options options, retry_store& store,
    std::shared_ptr<amqp::client> client, relay::queue_modes& modes, metrics::registry& registry,
    ordered_hook is_ordered) {
  return std::shared_ptr<retry_scheduler>(new retry_scheduler(std::move(executor), options, store,
                                                              std::move(client), modes, registry,
                                                              std::move(is_ordered)));
}

retry_scheduler::retry_scheduler(asio::any_io_executor executor, retry_scheduler_options options,
                                 retry_store& store, std::shared_ptr<amqp::client> client,
                                 relay::queue_modes& modes, metrics::registry& registry,
                                 ordered_hook is_ordered)
    : executor_(std::move(executor)),
      options_(options),
      store_(store),
      client_(std::move(client)),
      modes_(modes),
      metrics_(registry),
      is_ordered_(std::move(is_ordered)),
      backoff_(options.backoff_min, options.backoff_max) {}

void retry_scheduler::start() {
  if (started_)
    return;
  started_ = true;
  running_ = true;
  std::weak_ptr<retry_scheduler> weak = weak_from_this();
  client_->on_state_change([weak](amqp::client_state) {
    if (auto self = weak.lock())
      self->wake_.notify_all();
  });
  // Owned, not detached: stop() waits for run() to end, and `self` keeps the scheduler alive
  // until it has.
  asio::co_spawn(executor_, run(), [self = shared_from_this()](std::exception_ptr e) {
    self->running_ = false;
    self->done_.notify_all();
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("delivery: retry scheduler ended error=\"{}\"", ex.what());
      }
    }
  });
}

asio::awaitable<void> retry_scheduler::stop() {
  stopping_ = true;
  wake_.notify_all();
  while (running_)
    co_await done_.wait_until(clock::now() + std::chrono::seconds(1));
}

void retry_scheduler::expect(system_clock::time_point due) {
  if (expected_ && *expected_ <= due)
    return;
  expected_ = due;
  wake_.notify_all();
}

amqp::outgoing_message retry_scheduler::to_outgoing(const parked_message& row, bool broadcast,
                                                    bool released) {
  // The relay's own encoding (properties, the headers it derives), so that a retry looks like
  // the first publish. An async queue's name would make it encode an RPC request instead; such
  // a queue has no subscriptions (the relay never publishes to its sluice.<queue>), but its
  // rows are still published as plain messages rather than misencoded.
  message m;
  m.id = row.message_id;
  m.created_ms = row.created_ms;
  m.queue = rpc::is_async_queue(row.queue) ? std::string("-") : row.queue;
  m.partition = row.partition;
  for (const auto& [name, value] : row.headers) {
    if (name == "namespace")
      m.namespace_ = value;
    else if (name == "task")
      m.task = value;
    else if (name == "traceId")
      m.trace_id = value;
    else if (name == "transactionId")
      m.transaction_id = value;
  }
  m.payload = row.payload;
  auto encoded = relay::to_outgoing(m, relay::queue_mode::queue);
  amqp::outgoing_message out = std::move(*encoded);
  out.exchange.clear();
  out.routing_key = consume_queue(row.queue, row.subscription, broadcast);
  out.mandatory = true;
  auto& headers = *out.properties.headers;
  headers.set("queue", row.queue);
  for (const auto& [name, value] : row.headers) {
    if (!is_sluice_header(name))
      headers.set(name, value);
  }
  headers.set(attempt_header, std::to_string(row.attempt));
  if (row.first_attempt_ms)
    headers.set(first_attempt_header, std::to_string(*row.first_attempt_ms));
  if (released)
    headers.set(released_header, "1");
  return out;
}

asio::awaitable<void> retry_scheduler::run() {
  while (!stopping_) {
    co_await housekeeping();
    if (!connected() || !modes_.loaded()) {
      // Claims now would only hold rows nobody can publish; a connection state change wakes us.
      co_await wake_.wait_until(clock::now() + options_.poll);
      continue;
    }
    const auto round_start = system_clock::now();
    const auto claimed = co_await round();
    if (!claimed) {
      const auto pause = backoff_.on_failure();
      const auto until = clock::now() + pause.pause;
      while (!stopping_ && clock::now() < until)
        co_await wake_.wait_until(until);
      continue;
    }
    if (backoff_.on_success())
      spdlog::info("delivery: retry scheduler claims rows again");
    if (expected_ && *expected_ <= round_start)
      expected_.reset();
    if (*claimed >= options_.batch)
      continue;  // a full batch: more rows are due
    const auto at = co_await next_wake(*claimed > 0);
    if (!stopping_ && at > clock::now())
      co_await wake_.wait_until(at);
  }
}

asio::awaitable<std::optional<std::size_t>> retry_scheduler::round() {
  if (!to_remove_.empty()) {
    co_await remove_published();
    if (!to_remove_.empty())
      co_return std::nullopt;
  }
  auto [ec, rows] = co_await store_.claim_due(options_.batch, options_.lease,
                                              clock::now() + options_.statement_timeout);
  if (ec) {
    failed_statement("claim due rows");
    co_return std::nullopt;
  }
  metrics_.due.set(static_cast<double>(rows.size()));
  const std::size_t n = rows.size();
  if (n == 0)
    co_return n;
  spdlog::debug("delivery: retry scheduler claimed rows={}", n);
  auto acked = co_await publish(std::move(rows));
  to_remove_.insert(to_remove_.end(), std::make_move_iterator(acked.begin()),
                    std::make_move_iterator(acked.end()));
  co_await remove_published();
  co_return n;
}

asio::awaitable<std::vector<parked_message>> retry_scheduler::publish(
    std::vector<parked_message> rows) {
  // The publisher's callbacks may outlive this round (a confirm that comes after the wait
  // gave up): they share this state, not the coroutine's frame.
  struct pending {
    std::vector<std::optional<amqp::publish_outcome>> outcomes;
    std::size_t unsettled = 0;
    async_event settled;
  };
  auto state = std::make_shared<pending>();
  state->outcomes.resize(rows.size());
  const auto publisher = client_->get_publisher();
  const auto until = clock::now() + options_.confirm_timeout;

  for (std::size_t i = 0; i < rows.size(); ++i) {
    const parked_message& row = rows[i];
    const bool broadcast = modes_.mode_of(row.queue) == relay::queue_mode::broadcast;
    const bool released = !row.redrive && is_ordered_ && is_ordered_(row.queue, row.subscription);
    amqp::outgoing_message message = to_outgoing(row, broadcast, released);
    amqp::publish_callback on_result = [state, i](amqp::publish_result r) {
      state->outcomes[i] = r.outcome;
      if (--state->unsettled == 0)
        state->settled.notify_all();
    };
    ++state->unsettled;
    const auto ec = co_await publisher->publish(std::move(message), std::move(on_result), until);
    if (ec) {
      // on_result never runs for a refused publish.
      --state->unsettled;
      state->outcomes[i] = amqp::publish_outcome::failed;
      if (publish_log_.allow(clock::now())) {
        spdlog::warn(
            "delivery: retry scheduler cannot publish queue={} subscription={} id={} "
            "error=\"{}\" (not logged since: {})",
            row.queue, row.subscription, row.message_id.to_string(), ec.message(),
            publish_log_.suppressed);
        publish_log_.suppressed = 0;
      }
      if (ec != amqp::errc::invalid_argument) {
        // No slot (timeout, shutting down): the rest would wait for nothing.
        for (std::size_t j = i + 1; j < rows.size(); ++j)
          state->outcomes[j] = amqp::publish_outcome::failed;
        break;
      }
    }
  }
  while (state->unsettled > 0 && clock::now() < until)
    co_await state->settled.wait_until(until);

  std::vector<parked_message> acked;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto outcome = state->outcomes[i].value_or(amqp::publish_outcome::failed);
    switch (outcome) {
      case amqp::publish_outcome::acked:
        metrics_.published.inc();
        acked.push_back(std::move(rows[i]));
        continue;
      case amqp::publish_outcome::returned:
        metrics_.returned.inc();
        break;
      case amqp::publish_outcome::nacked:
        metrics_.nacked.inc();
        break;
      case amqp::publish_outcome::failed:
        metrics_.failed.inc();
        break;
    }
    if (outcome != amqp::publish_outcome::failed && publish_log_.allow(clock::now())) {
      spdlog::warn(
          "delivery: retry not taken by RabbitMQ outcome={} queue={} subscription={} "
          "amqp_queue={} (kept; published again in {} ms) (not logged since: {})",
          amqp::to_string(outcome), rows[i].queue, rows[i].subscription,
          consume_queue(rows[i].queue, rows[i].subscription,
                        modes_.mode_of(rows[i].queue) == relay::queue_mode::broadcast),
          options_.lease.count(), publish_log_.suppressed);
      publish_log_.suppressed = 0;
    }
  }
  co_return acked;
}

asio::awaitable<void> retry_scheduler::remove_published() {
  if (to_remove_.empty())
    co_return;
  const auto ec = co_await store_.remove(to_remove_, clock::now() + options_.statement_timeout);
  if (ec) {
    failed_statement("delete published rows");
    co_return;
  }
  to_remove_.clear();
}

asio::awaitable<void> retry_scheduler::housekeeping() {
  const auto now = clock::now();
  if (now < next_housekeeping_)
    co_return;
  next_housekeeping_ = now + options_.housekeeping_interval;
  const auto deadline = now + options_.statement_timeout;
  auto [ec, rows] = co_await store_.count(deadline);
  if (ec) {
    failed_statement("count rows");
    co_return;
  }
  metrics_.rows.set(static_cast<double>(rows));
  // Small batches, a few per interval: a deleted subscription with many parked rows goes away
  // over some seconds without one long delete.
  for (int i = 0; i < 10 && !stopping_; ++i) {
    auto [ec2, removed] = co_await store_.remove_orphans(options_.orphan_batch, options_.lease,
                                                         clock::now() + options_.statement_timeout);
    if (ec2) {
      failed_statement("delete rows of deleted subscriptions");
      co_return;
    }
    if (removed > 0)
      spdlog::info("delivery: deleted parked rows of deleted subscriptions rows={}", removed);
    if (removed < options_.orphan_batch)
      break;
  }
}

asio::awaitable<retry_scheduler::clock::time_point> retry_scheduler::next_wake(bool claimed_any) {
  const auto now = clock::now();
  auto at = now + options_.poll;
  if (expected_)
    at = std::min(at, steady_at(*expected_));
  auto [ec, due] = co_await store_.next_due(now + options_.statement_timeout);
  if (ec) {
    failed_statement("read the next due time");
  } else if (due) {
    auto table_at = steady_at(*due);
    if (!claimed_any)
      table_at = std::max(table_at, now + empty_round_floor);
    at = std::min(at, table_at);
  }
  co_return at;
}

void retry_scheduler::failed_statement(const char* what) {
  if (!store_log_.allow(clock::now()))
    return;
  spdlog::warn("delivery: retry scheduler cannot {} error=\"{}\" (not logged since: {})", what,
               store_.last_error(), store_log_.suppressed);
  store_log_.suppressed = 0;
}

}  // namespace sluice::delivery
