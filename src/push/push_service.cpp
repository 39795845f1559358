#include "sluice/push/push_service.hpp"

#include <map>
#include <unordered_map>

#include "sluice/buffer/errc.hpp"
#include "sluice/store/migrations.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace sluice::push {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

const char* to_string(item_status s) {
  switch (s) {
    case item_status::stored:
      return "stored";
    case item_status::buffered:
      return "buffered";
    case item_status::duplicate:
      return "duplicate";
  }
  return "unknown";
}

push_service::push_service(asio::any_io_executor executor, store::pg_pool& pool,
                           store::message_store& store, buffer::buffer_log& failover,
                           buffer::buffer_log& qos0, metrics::registry& metrics,
                           push_service_options options)
    : executor_(executor),
      pool_(pool),
      store_(store),
      failover_(failover),
      qos0_(qos0),
      options_(options),
      batcher_(executor, store, options.batcher, metrics),
      failover_replayer_(executor, failover, store, index_, gate_, metrics,
                         {"failover", options.replay_batch, 3, options.deadline, false}),
      qos0_replayer_(executor, qos0, store, index_, gate_, metrics,
                     {"qos0", options.replay_batch, 1, options.deadline, true}),
      metrics_(metrics),
      items_total_(metrics.add_counter(
          "sluice_push_items_total",
          "Pushed items by queue and outcome (stored, buffered, duplicate).", {"queue", "status"})),
      failovers_(
          metrics
              .add_counter(
                  "sluice_push_failovers_total",
                  "Times the push path switched to the file buffer because PostgreSQL failed.")
              .get()) {
  auto& db_healthy =
      metrics.add_gauge("sluice_db_healthy", "1 when the last PostgreSQL round trip worked.").get();
  auto& failover_active =
      metrics
          .add_gauge("sluice_push_failover_active", "1 while durable pushes go to the file buffer.")
          .get();
  auto& pending = metrics.add_gauge("sluice_buffer_pending_records",
                                    "Records in the buffer not yet in PostgreSQL.", {"log"});
  auto& pending_bytes = metrics.add_gauge("sluice_buffer_pending_bytes",
                                          "Bytes of records not yet in PostgreSQL.", {"log"});
  auto& disk_bytes =
      metrics.add_gauge("sluice_buffer_disk_bytes", "Bytes of segment files on disk.", {"log"});
  auto& oldest = metrics.add_gauge("sluice_buffer_oldest_pending_age_seconds",
                                   "Age of the oldest record not yet in PostgreSQL.", {"log"});
  auto& failed = metrics.add_gauge("sluice_buffer_failed_records",
                                   "Records in failed/ (rejected by PostgreSQL).", {"log"});
  auto& truncated = metrics.add_gauge(
      "sluice_buffer_truncated_tails",
      "Torn or corrupt segment tails truncated by recovery since start.", {"log"});
  auto& quarantined =
      metrics.add_gauge("sluice_buffer_quarantined_segments",
                        "Unreadable segments moved to quarantine/ since start.", {"log"});
  metrics.on_collect([=, this, &db_healthy, &failover_active, &pending, &pending_bytes, &disk_bytes,
                      &oldest, &failed, &truncated, &quarantined] {
    db_healthy.set(gate_.healthy() ? 1 : 0);
    failover_active.set(failover_active_ ? 1 : 0);
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    for (auto* log : {&failover_, &qos0_}) {
      const std::string name = log == &failover_ ? "failover" : "qos0";
      const auto s = log->stats();
      pending.with({name}).set(static_cast<double>(s.pending_records));
      pending_bytes.with({name}).set(static_cast<double>(s.pending_bytes));
      disk_bytes.with({name}).set(static_cast<double>(s.disk_bytes));
      oldest.with({name}).set(s.oldest_pending_created_ms
                                  ? static_cast<double>(now_ms - *s.oldest_pending_created_ms) /
                                        1000.0
                                  : 0.0);
      failed.with({name}).set(static_cast<double>(s.failed_records));
      truncated.with({name}).set(static_cast<double>(s.truncated_tails_total));
      quarantined.with({name}).set(static_cast<double>(s.quarantined_segments_total));
    }
  });
}

asio::awaitable<void> push_service::index_log(buffer::buffer_log& log) {
  std::size_t records = 0;
  for (;;) {
    auto [ec, batch] = co_await log.read_batch(10'000, use_tuple);
    if (ec) {
      spdlog::error("push: reading {} to index it failed: {}", log.dir().string(), ec.message());
      break;
    }
    if (batch.empty())
      break;
    records += batch.size();
    for (const auto& r : batch)
      index_.add(r.msg);
  }
  log.rewind();
  if (records > 0)
    spdlog::info("push: {} records pending in {}; they replay once PostgreSQL answers", records,
                 log.dir().string());
}

asio::awaitable<void> push_service::start() {
  co_await index_log(failover_);
  co_await index_log(qos0_);
  failover_replayer_.on_drained = [this] { leave_failover_if_drained(); };
  failover_replayer_.on_progress = [this] { replay_progress_.notify_all(); };
  failover_replayer_.start();
  qos0_replayer_.start();
  schema_keeper_running_ = true;
  asio::co_spawn(executor_, keep_schema(), asio::detached);
}

void push_service::leave_failover_if_drained() {
  if (!failover_active_ || !gate_.schema_ready())
    return;
  if (failover_appends_in_flight_ > 0) {
    // Caught up, but appends are still being written: hold new pushes back until those are
    // replayed too, or under steady load the log would never be found empty.
    handoff_ = true;
    return;
  }
  if (failover_.stats().pending_records == 0) {
    failover_active_ = false;
    handoff_ = false;
    handoff_done_.notify_all();
    spdlog::info("push: failover log drained; durable pushes go straight to PostgreSQL");
  }
}

asio::awaitable<void> push_service::keep_schema() {
  std::chrono::milliseconds backoff{200};
  while (!stopping_) {
    const auto result =
        co_await store::apply_migrations(pool_, clock::now() + std::chrono::seconds(30));
    if (!result.ec) {
      if (!result.applied.empty()) {
        spdlog::info("store: schema migrated to version {} (applied migrations {} to {})",
                     result.schema_version, result.applied.front(), result.applied.back());
      }
      gate_.set_schema_ready();
      // Decided here rather than on the replayer's next poll: once readiness reports the
      // schema, a push must go straight to PostgreSQL, not to an empty buffer.
      leave_failover_if_drained();
      failover_replayer_.wake();
      qos0_replayer_.wake();
      break;
    }
    spdlog::warn(
        "store: migrations not applied yet ({}: {}); retrying in {} ms; pushes are buffered "
        "meanwhile",
        result.ec.message(), result.message, backoff.count());
    co_await schema_keeper_done_.wait_until(clock::now() + backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  schema_keeper_running_ = false;
  schema_keeper_done_.notify_all();
}

asio::awaitable<void> push_service::stop() {
  stopping_ = true;
  schema_keeper_done_.notify_all();
  while (schema_keeper_running_)
    co_await schema_keeper_done_.wait_until(clock::now() + std::chrono::milliseconds(100));
  co_await failover_replayer_.stop();
  co_await qos0_replayer_.stop();
}

push_service::queue_counters& push_service::counters_for(const std::string& queue) {
  const auto make = [this](const std::string& label) {
    queue_counters c{};
    for (auto status : {item_status::stored, item_status::buffered, item_status::duplicate})
      c.by_status[static_cast<std::size_t>(status)] =
          &items_total_.with({label, to_string(status)});
    return c;
  };
  if (const auto it = item_counters_.find(queue); it != item_counters_.end())
    return it->second;
  if (item_counters_.size() >= options_.max_queue_labels) {
    if (!other_queues_counters_)
      other_queues_counters_ = make("(other)");
    return *other_queues_counters_;
  }
  return item_counters_.emplace(queue, make(queue)).first->second;
}

asio::awaitable<push_outcome> push_service::push(push_request request) {
  push_outcome out;
  out.qos0 = request.qos0.has_value();
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::vector<message> to_write;
  std::vector<std::size_t> slots;  // out.items index of each to_write entry
  // Each item's queue counters, looked up while the queue name is at hand (a message may be
  // moved into a log below); counted once the outcome is known.
  std::vector<queue_counters*> counters(request.items.size());
  std::unordered_map<std::string, uuid>
      seen_here;  // (queue, transactionId) earlier in this request
  out.items.resize(request.items.size());
  to_write.reserve(request.items.size());
  slots.reserve(request.items.size());

  for (std::size_t i = 0; i < request.items.size(); ++i) {
    // Batches are mostly of one queue: the previous item's counters then serve.
    const bool same_queue = i > 0 && request.items[i - 1].queue == request.items[i].queue;
    counters[i] = same_queue ? counters[i - 1] : &counters_for(request.items[i].queue);
  }
  for (std::size_t i = 0; i < request.items.size(); ++i) {
    message& m = request.items[i];
    m.id = ids_.next(now_ms);
    m.created_ms = now_ms;
    out.items[i] = {m.id, m.transaction_id, item_status::stored};
    if (m.transaction_id) {
      std::optional<uuid> existing = index_.find(m.queue, *m.transaction_id);
      const std::string key = m.queue + '\n' + *m.transaction_id;
      if (!existing) {
        if (const auto it = seen_here.find(key); it != seen_here.end())
          existing = it->second;
      }
      if (existing) {
        out.items[i].id = *existing;
        out.items[i].status = item_status::duplicate;
        continue;
      }
      seen_here.emplace(key, m.id);
    }
    slots.push_back(i);
    to_write.push_back(std::move(m));
  }

  auto finish = [&](push_outcome& o) {
    if (o.error_status == 0) {
      for (std::size_t i = 0; i < o.items.size(); ++i)
        counters[i]->by_status[static_cast<std::size_t>(o.items[i].status)]->inc();
    }
    return std::move(o);
  };

  if (to_write.empty()) {
    out.db_healthy = gate_.healthy();
    co_return finish(out);
  }
  if (request.qos0) {
    out = co_await append_to_log(qos0_, qos0_replayer_, std::move(to_write), std::move(out), slots,
                                 request.qos0);
    co_return finish(out);
  }
  if (failover_active_ && gate_.healthy() && !handoff_) {
    // PostgreSQL is back and the replayer drains the log. Pushes that keep arriving faster
    // than it drains would keep the log from ever emptying, and the push path would stay on
    // the buffer for good; so while the backlog is above a few replay batches, a push waits
    // for replay progress, and is refused with 503 if none comes within the deadline.
    const std::size_t limit = options_.replay_batch * 4;
    const auto until = clock::now() + options_.deadline;
    while (failover_active_ && gate_.healthy() && !handoff_ &&
           failover_.stats().pending_records >= limit && clock::now() < until) {
      co_await replay_progress_.wait_until(until);
    }
    if (failover_active_ && gate_.healthy() && !handoff_ &&
        failover_.stats().pending_records >= limit) {
      out.error_status = 503;
      out.error_code = "overloaded";
      out.error_message =
          "replaying the file buffer into PostgreSQL after an outage; retry shortly";
      out.retry_after_seconds = 1;
      co_return out;
    }
  }
  if (handoff_ && gate_.healthy()) {
    // Bounded: one append and one replay round trip. If PostgreSQL fails meanwhile, the push
    // goes to the buffer behind the others.
    const auto until = clock::now() + std::chrono::seconds(1);
    while (handoff_ && clock::now() < until)
      co_await handoff_done_.wait_until(until);
  }
  if (!failover_active_) {
    batch_result res = co_await batcher_.submit(to_write);
    switch (res.failure) {
      case store::failure_kind::none:
        gate_.report(true);
        out.db_healthy = true;
        for (std::size_t k = 0; k < slots.size(); ++k) {
          out.items[slots[k]].id = res.items[k].id;
          out.items[slots[k]].status = res.items[k].status == store::insert_status::stored
                                           ? item_status::stored
                                           : item_status::duplicate;
        }
        if (sink_ != nullptr) {
          std::vector<message> fresh;
          for (std::size_t k = 0; k < to_write.size(); ++k) {
            if (res.items[k].status == store::insert_status::stored) {
              fresh.push_back(std::move(to_write[k]));
            }
          }
          if (!fresh.empty())
            sink_->stored(std::move(fresh));
        }
        co_return finish(out);
      case store::failure_kind::overloaded:
        out.error_status = 503;
        out.error_code = "overloaded";
        out.error_message = res.message;
        out.retry_after_seconds = 1;
        co_return out;
      case store::failure_kind::rejected:
        out.error_status = 400;
        out.error_code = "rejected_by_database";
        out.error_message =
            "PostgreSQL rejected an item of this request; nothing was stored: " + res.message;
        co_return out;
      case store::failure_kind::unavailable:
        gate_.report(false);
        handoff_ = false;
        handoff_done_.notify_all();
        if (!failover_active_) {
          failover_active_ = true;
          failovers_.inc();
          spdlog::warn("push: PostgreSQL unavailable ({}); durable pushes go to the file buffer",
                       res.message);
        }
        break;
    }
  }
  out = co_await append_to_log(failover_, failover_replayer_, std::move(to_write), std::move(out),
                               slots, std::nullopt);
  co_return finish(out);
}

asio::awaitable<push_outcome> push_service::append_to_log(
    buffer::buffer_log& log, buffer_replayer& replayer, std::vector<message> batch,
    push_outcome out, const std::vector<std::size_t>& slots, std::optional<qos0_options> hints) {
  // Indexed before the append completes so that a retry arriving meanwhile is a duplicate.
  for (const auto& m : batch)
    index_.add(m);
  std::vector<message> keys;  // what is needed to undo the index entries, without payloads
  for (const auto& m : batch) {
    if (m.transaction_id)
      keys.push_back(message{m.id, 0, m.queue, {}, {}, {}, {}, m.transaction_id, {}});
  }
  const bool is_failover = &log == &failover_;
  if (is_failover)
    ++failover_appends_in_flight_;
  auto [ec] = co_await log.append(std::move(batch), use_tuple);
  if (is_failover)
    --failover_appends_in_flight_;
  if (ec) {
    for (const auto& k : keys)
      index_.remove(k);
    out.error_status = 503;
    out.retry_after_seconds = 5;
    if (ec == buffer::errc::buffer_full) {
      out.error_code = "buffer_full";
      out.error_message =
          is_failover ? "PostgreSQL is unavailable and the file buffer is full; nothing was stored"
                      : "the QoS0 buffer is full; nothing was stored";
    } else {
      out.error_code = "buffer_unavailable";
      out.error_message =
          "the file buffer could not take the write (" + ec.message() + "); nothing was stored";
    }
    spdlog::error("push: {} append failed: {}", is_failover ? "failover" : "qos0", ec.message());
    co_return out;
  }
  for (std::size_t slot : slots)
    out.items[slot].status = item_status::buffered;
  out.db_healthy = gate_.healthy() && !failover_active_;
  if (hints) {
    replayer.appended(std::chrono::milliseconds(hints->buffer_ms),
                      static_cast<std::size_t>(hints->buffer_max));
  } else {
    replayer.appended();
  }
  co_return out;
}

void push_service::set_sink(stored_sink* sink) {
  sink_ = sink;
  failover_replayer_.set_sink(sink);
  qos0_replayer_.set_sink(sink);
}

buffers_status push_service::status() const {
  buffers_status s;
  s.db_healthy = gate_.healthy();
  s.schema_ready = gate_.schema_ready();
  s.failover_active = failover_active_;
  s.pending_index_entries = index_.size();
  s.failover = {failover_.stats(), failover_replayer_.replay_rate_per_second()};
  s.qos0 = {qos0_.stats(), qos0_replayer_.replay_rate_per_second()};
  return s;
}

asio::awaitable<buffer::retry_result> push_service::retry_failed(buffer::retry_filter filter) {
  buffer::retry_result total;
  const std::size_t limit = filter.max_records;
  for (auto* log : {&failover_, &qos0_}) {
    // With the limit used up the call only counts what is left.
    filter.max_records = limit - total.retried;
    auto [ec, n, remaining] = co_await log->retry_failed(filter, use_tuple);
    if (ec)
      spdlog::error("push: retrying failed/ of {} failed: {}", log->dir().string(), ec.message());
    total.retried += n;
    total.remaining += remaining;
  }
  failover_replayer_.appended();
  qos0_replayer_.appended();
  co_return total;
}

}  // namespace sluice::push
