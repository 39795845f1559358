#include "sluice/push/push_service.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "sluice/buffer/errc.hpp"
#include "sluice/push/push_state_metrics.hpp"
#include "sluice/store/migrations.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace sluice::push {

namespace asio = boost::asio;

namespace {
// The push is refused as a whole: nothing of it was acknowledged.
push_outcome& refuse(push_outcome& out, int status, std::string code, std::string message,
                     int retry_after_seconds) {
  out.error_status = status;
  out.error_code = std::move(code);
  out.error_message = std::move(message);
  out.retry_after_seconds = retry_after_seconds;
  return out;
}
}  // namespace
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
                           store::message_writer& store, record_log& failover, record_log& qos0,
                           metrics::registry& metrics, push_service_options options)
    : executor_(executor),
      pool_(pool),
      store_(store),
      failover_(failover),
      qos0_(qos0),
      options_(options),
      batcher_(executor, store, options.batcher, metrics),
      failover_replayer_(executor, failover, store, index_, metrics,
                         {"failover", pending_log::failover, options.replay_batch, 3,
                          options.deadline, false, 3, options.poisoned_span}),
      qos0_replayer_(executor, qos0, store, index_, metrics,
                     {"qos0", pending_log::qos0, options.replay_batch, 1, options.deadline, true, 3,
                      options.poisoned_span}),
      items_total_(metrics.add_counter(
          "sluice_push_items_total",
          "Pushed items by queue and outcome (stored, buffered, duplicate).", {"queue", "status"})),
      failovers_(
          metrics
              .add_counter(
                  "sluice_push_failovers_total",
                  "Times the push path switched to the file buffer because PostgreSQL failed.")
              .get()),
      transitions_(metrics.add_counter("sluice_push_mode_transitions_total",
                                       "Changes of the durable push path's mode (README: How a "
                                       "push becomes durable).",
                                       {"from", "to"})) {
  expose_push_state(metrics, [this] { return status(); });
}

asio::awaitable<void> push_service::index_log(record_log& log, pending_log which) {
  std::size_t records = 0;
  for (;;) {
    auto [ec, batch] = co_await log.read_batch(10'000);
    if (ec) {
      spdlog::error("push: reading {} to index it failed: {}", log.name(), ec.message());
      break;
    }
    if (batch.empty())
      break;
    records += batch.size();
    for (const auto& r : batch)
      index_.add(r.msg, which, pending_state::written);
  }
  log.rewind();
  if (records > 0)
    spdlog::info("push: {} records pending in {}; they replay once PostgreSQL answers", records,
                 log.name());
}

asio::awaitable<void> push_service::start() {
  co_await index_log(failover_, pending_log::failover);
  co_await index_log(qos0_, pending_log::qos0);
  failover_replayer_.start({
      .committed =
          [this] {
            apply(push_event::db_available);
            replay_progress_.notify_all();
          },
      .unavailable = [this] { apply(push_event::db_unavailable); },
      .drained = [this] { apply(push_event::log_drained); },
      .db_alive = [this] { return db_alive(); },
  });
  qos0_replayer_.start({
      .committed = [this] { apply(push_event::db_available); },
      .unavailable = [this] { apply(push_event::db_unavailable); },
      .drained = {},
      .db_alive = [this] { return db_alive(); },
  });
  watcher_running_ = true;
  asio::co_spawn(executor_, watch_db(), [this](std::exception_ptr e) {
    if (e)
      spdlog::critical("push: the PostgreSQL watcher stopped by an exception");
    watcher_running_ = false;
    watcher_done_.notify_all();
  });
}

// The one place the mode changes: every transition is logged and counted, and whoever waits
// for a mode (handing-back pushes, throttled pushes, the watcher) re-checks.
void push_service::apply(push_event e) {
  const auto change = mode_.on(e, failover_appends_in_flight_);
  gate_.report(gate_.schema_ready() && mode_.db_healthy());
  if (!change)
    return;
  transitions_.with({to_string(change->from), to_string(change->to)}).inc();
  if (change->to == push_mode::failing_over) {
    if (change->from == push_mode::direct || change->from == push_mode::handing_back)
      failovers_.inc();
    spdlog::warn("push: mode {} -> {} ({}): durable pushes go to the file buffer",
                 to_string(change->from), to_string(change->to), to_string(e));
  } else if (change->to == push_mode::direct) {
    spdlog::info(
        "push: mode {} -> {}: failover log drained; durable pushes go straight to "
        "PostgreSQL",
        to_string(change->from), to_string(change->to));
  } else {
    spdlog::info("push: mode {} -> {} ({})", to_string(change->from), to_string(change->to),
                 to_string(e));
  }
  // PostgreSQL is back: the failover replayer may be asleep on an empty log and must find
  // that out for the mode to reach direct.
  if (change->to == push_mode::draining)
    failover_replayer_.wake();
  mode_changed_.notify_all();
  replay_progress_.notify_all();
  watcher_wake_.notify_all();
}

asio::awaitable<bool> push_service::db_alive() {
  if (options_.db_alive)
    co_return co_await options_.db_alive();
  co_return !co_await pool_.ping(clock::now() + std::chrono::seconds(1));
}

// Owns two waits of the push path on PostgreSQL: until the schema is migrated (nothing is
// written before), and, while failing over with nothing in the log to replay (so no replay can
// find PostgreSQL back), until a probe answers. Otherwise it sleeps until the mode changes.
asio::awaitable<void> push_service::watch_db() {
  std::chrono::milliseconds backoff{200};
  while (!stopping_) {
    if (!gate_.schema_ready()) {
      store::migration_result result;
      if (options_.prepare_schema)
        result.ec = co_await options_.prepare_schema();
      else
        result = co_await store::apply_migrations(pool_, clock::now() + std::chrono::seconds(30));
      if (!result.ec) {
        if (!result.applied.empty()) {
          spdlog::info("store: schema migrated to version {} (applied migrations {} to {})",
                       result.schema_version, result.applied.front(), result.applied.back());
        }
        gate_.set_schema_ready();
        failover_replayer_.schema_ready();
        qos0_replayer_.schema_ready();
        if (on_schema_ready_)
          on_schema_ready_();
        apply(push_event::db_available);
        // Decided here rather than on the replayer's next look: once readiness reports the
        // schema, a push must go straight to PostgreSQL, not to an empty buffer.
        if (failover_.stats().pending_records == 0)
          apply(push_event::log_drained);
        backoff = std::chrono::milliseconds(200);
        continue;
      }
      spdlog::warn(
          "store: migrations not applied yet ({}: {}); retrying in {} ms; pushes are buffered "
          "meanwhile",
          result.ec.message(), result.message, backoff.count());
      co_await watcher_wake_.wait_until(clock::now() + backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    // Appends in flight do not count: they are what a hand-back waits for, once PostgreSQL is
    // known to answer.
    if (mode_.mode() == push_mode::failing_over && failover_.stats().pending_records == 0) {
      if (co_await db_alive()) {
        apply(push_event::db_available);
        if (failover_.stats().pending_records == 0)
          apply(push_event::log_drained);
        backoff = std::chrono::milliseconds(200);
      } else {
        co_await watcher_wake_.wait_until(clock::now() + backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      }
      continue;
    }
    co_await watcher_wake_.wait_until(clock::time_point::max());
  }
}

asio::awaitable<void> push_service::stop() {
  stopping_ = true;
  watcher_wake_.notify_all();
  while (watcher_running_)
    co_await watcher_done_.wait_until(clock::time_point::max());
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

// What classify() decided for each item of a request.
struct push_service::classified {
  enum class kind {
    fresh,      // new: written under its own id
    duplicate,  // answered with the pending or stored original's id
    repeat,     // an earlier item of this request has the same key
    // A durable push repeating a QoS0 record that is not in PostgreSQL yet: written durably
    // under that record's id, so whichever copy reaches PostgreSQL first is the one row with
    // that id (the other is dropped as a duplicate by id), and the answer names it.
    adopt,
  };
  struct decision {
    kind what = kind::fresh;
    uuid id;                // duplicate, adopt: the original's id
    std::size_t first = 0;  // repeat: the earlier item of this request with the same key
  };
  std::vector<decision> items;
};

// Decides which items are new, which repeat a pending or stored message, and which repeat an
// earlier item of the same request. An item whose original is still being written (or
// re-checked after the log set records aside) makes the whole request wait for the index to
// settle and decide again: nothing of it is written before, and nothing is added to the index
// while it waits (an add and remove would wake the other waiters for nothing). Once nothing
// must wait, new items with a transactionId get a `writing` entry in the same step, with no
// suspension in between, so a concurrent retry sees them. False when `until` passed first.
asio::awaitable<bool> push_service::classify(std::vector<message>& items, bool qos0,
                                             clock::time_point until, classified& out) {
  using kind = classified::kind;
  const pending_log where = qos0 ? pending_log::qos0 : pending_log::db;
  std::unordered_map<std::string, std::size_t> seen_here;
  for (;;) {
    out.items.assign(items.size(), {});
    seen_here.clear();
    bool must_wait = false;
    for (std::size_t i = 0; i < items.size() && !must_wait; ++i) {
      const message& m = items[i];
      if (!m.transaction_id)
        continue;
      std::string key = m.queue + '\n' + *m.transaction_id;
      if (const auto it = seen_here.find(key); it != seen_here.end()) {
        out.items[i] = {kind::repeat, {}, it->second};
        continue;
      }
      seen_here.emplace(std::move(key), i);
      const auto entry = index_.find(m.queue, *m.transaction_id);
      if (!entry)
        continue;
      switch (entry->state) {
        case pending_state::stored:
          out.items[i] = {kind::duplicate, entry->id, 0};
          break;
        case pending_state::written:
          // Written to the failover log: as durable as any answer. A QoS0 record (written,
          // fsynced only on an interval) is as durable as a QoS0 answer, not a durable one.
          if (entry->log == pending_log::failover || qos0)
            out.items[i] = {kind::duplicate, entry->id, 0};
          else
            out.items[i] = {kind::adopt, entry->id, 0};
          break;
        case pending_state::writing:
        case pending_state::verifying:
          must_wait = true;
          break;
      }
    }
    if (!must_wait) {
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (out.items[i].what == kind::fresh && items[i].transaction_id)
          index_.add(items[i], where, pending_state::writing);
      }
      co_return true;
    }
    if (clock::now() >= until)
      co_return false;
    co_await index_.settled().wait_until(until);
  }
}

void push_service::forget(const std::vector<message>& keys) {
  for (const auto& m : keys)
    index_.remove(m);
}

asio::awaitable<push_outcome> push_service::push(push_request request) {
  using kind = classified::kind;
  push_outcome out;
  out.qos0 = request.qos0.has_value();
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto until = clock::now() + options_.deadline;
  // Each item's queue counters, looked up while the queue name is at hand (a message may be
  // moved into a log below); counted once the outcome is known.
  std::vector<queue_counters*> counters(request.items.size());
  out.items.resize(request.items.size());
  for (std::size_t i = 0; i < request.items.size(); ++i) {
    // Batches are mostly of one queue: the previous item's counters then serve.
    const bool same_queue = i > 0 && request.items[i - 1].queue == request.items[i].queue;
    counters[i] = same_queue ? counters[i - 1] : &counters_for(request.items[i].queue);
    message& m = request.items[i];
    m.id = ids_.next(now_ms);
    m.created_ms = now_ms;
    out.items[i] = {m.id, m.transaction_id, item_status::stored};
  }

  classified decided;
  const bool any_key = std::any_of(request.items.begin(), request.items.end(),
                                   [](const message& m) { return m.transaction_id.has_value(); });
  // Without transactionIds there is nothing to decide: every item is new (and no coroutine
  // frame is spent on finding that out).
  if (!any_key) {
    decided.items.assign(request.items.size(), {});
  } else if (!co_await classify(request.items, out.qos0, until, decided)) {
    co_return refuse(out, 503, "duplicate_in_flight",
                     "an earlier push with the same transactionId is not durable yet; retry "
                     "shortly",
                     1);
  }
  std::vector<message> to_write;
  std::vector<std::size_t> slots;  // out.items index of each to_write entry
  // The index entries this push owns (its fresh items with a transactionId), without
  // payloads: settled whatever becomes of to_write.
  std::vector<message> owned;
  to_write.reserve(request.items.size());
  slots.reserve(request.items.size());
  for (std::size_t i = 0; i < request.items.size(); ++i) {
    const auto& d = decided.items[i];
    message& m = request.items[i];
    if (d.what == kind::duplicate) {
      out.items[i].id = d.id;
      out.items[i].status = item_status::duplicate;
      continue;
    }
    if (d.what == kind::repeat)
      continue;
    if (d.what == kind::adopt) {
      m.id = d.id;
      out.items[i].id = d.id;
    } else if (m.transaction_id) {
      owned.push_back(message{m.id, 0, m.queue, {}, {}, {}, {}, m.transaction_id, {}, {}});
    }
    slots.push_back(i);
    to_write.push_back(std::move(m));
  }

  // A repeat inside the request answers with whatever id its first occurrence ends up with
  // (its own, or the one PostgreSQL already had): never an id minted for nothing.
  auto finish = [&](push_outcome& o) {
    if (o.error_status == 0) {
      for (std::size_t i = 0; i < o.items.size(); ++i) {
        const auto& d = decided.items[i];
        if (d.what == kind::repeat) {
          o.items[i].id = o.items[d.first].id;
          o.items[i].status = item_status::duplicate;
        } else if (d.what == kind::adopt) {
          o.items[i].status = item_status::duplicate;
        }
        counters[i]->by_status[static_cast<std::size_t>(o.items[i].status)]->inc();
      }
    }
    return std::move(o);
  };

  if (to_write.empty()) {
    out.db_healthy = gate_.healthy();
    co_return finish(out);
  }
  if (request.qos0) {
    out = co_await append_to_log(qos0_, qos0_replayer_, std::move(to_write), std::move(out), slots,
                                 request.qos0, owned);
    co_return finish(out);
  }
  for (;;) {
    const push_mode mode = mode_.mode();
    if (mode == push_mode::direct) {
      bool failed_over = false;
      out = co_await store_direct(to_write, std::move(out), slots, owned, failed_over);
      if (!failed_over)
        co_return finish(out);
      break;
    }
    if (mode == push_mode::handing_back) {
      // Bounded: one append and one replay round trip. If the hand-back takes longer, the push
      // goes to the buffer behind the others.
      const auto handoff_until = std::min(until, clock::now() + options_.handoff_wait);
      while (mode_.mode() == push_mode::handing_back && clock::now() < handoff_until)
        co_await mode_changed_.wait_until(handoff_until);
      if (mode_.mode() != push_mode::handing_back)
        continue;
      break;
    }
    if (mode == push_mode::draining) {
      // PostgreSQL is back and the replayer drains the log. Pushes that keep arriving faster
      // than it drains would keep the log from ever emptying, and the push path would stay on
      // the buffer for good; so while the backlog is above a few replay batches, a push waits
      // for replay progress, and is refused with 503 if none comes within the deadline.
      const std::size_t limit = options_.replay_batch * 4;
      const auto backlogged = [&] {
        return mode_.mode() == push_mode::draining && failover_.stats().pending_records >= limit;
      };
      while (backlogged() && clock::now() < until)
        co_await replay_progress_.wait_until(until);
      if (backlogged()) {
        forget(owned);
        co_return refuse(out, 503, "overloaded",
                         "replaying the file buffer into PostgreSQL after an outage; retry shortly",
                         1);
      }
      if (mode_.mode() == push_mode::draining || mode_.mode() == push_mode::failing_over)
        break;
      continue;
    }
    break;  // failing_over
  }
  out = co_await append_to_log(failover_, failover_replayer_, std::move(to_write), std::move(out),
                               slots, std::nullopt, owned);
  co_return finish(out);
}

// One trip through the batcher. Sets `failed_over` (and leaves `to_write` for the failover log)
// when PostgreSQL is unavailable; answers everything else itself.
asio::awaitable<push_outcome> push_service::store_direct(std::vector<message>& to_write,
                                                         push_outcome out,
                                                         const std::vector<std::size_t>& slots,
                                                         const std::vector<message>& owned,
                                                         bool& failed_over) {
  batch_result res = co_await batcher_.submit(to_write);
  switch (res.failure) {
    case store::failure_kind::none:
      apply(push_event::db_available);
      out.db_healthy = true;
      for (std::size_t k = 0; k < slots.size(); ++k) {
        index_.committed(to_write[k], res.items[k].id);
        out.items[slots[k]].id = res.items[k].id;
        out.items[slots[k]].status = res.items[k].status == store::insert_status::stored
                                         ? item_status::stored
                                         : item_status::duplicate;
      }
      if (sink_ != nullptr) {
        std::vector<message> fresh;
        for (std::size_t k = 0; k < to_write.size(); ++k) {
          if (res.items[k].status == store::insert_status::stored)
            fresh.push_back(std::move(to_write[k]));
        }
        if (!fresh.empty())
          sink_->stored(std::move(fresh));
      }
      co_return out;
    case store::failure_kind::overloaded:
      forget(owned);
      co_return refuse(out, 503, "overloaded", res.message, 1);
    case store::failure_kind::rejected:
      forget(owned);
      co_return refuse(
          out, 400, "rejected_by_database",
          "PostgreSQL rejected an item of this request; nothing was stored: " + res.message, 0);
    case store::failure_kind::unavailable:
      break;
  }
  if (res.slow_statement && co_await db_alive()) {
    // PostgreSQL answers on another connection: this round trip was slow (a lock held past
    // the statement timeout, say), not the server gone. Failing over would send every push to
    // the buffer and the replay into the same lock; the client retries this one instead. The
    // batch may have committed meanwhile: a retry is answered `duplicate` with the same id.
    forget(owned);
    co_return refuse(out, 503, "db_timeout",
                     "PostgreSQL did not complete the insert in time (" + res.message +
                         "); nothing is acknowledged, retry shortly",
                     1);
  }
  apply(push_event::db_unavailable);
  failed_over = true;
  co_return out;
}

asio::awaitable<push_outcome> push_service::append_to_log(
    record_log& log, buffer_replayer& replayer, std::vector<message> batch, push_outcome out,
    const std::vector<std::size_t>& slots, std::optional<qos0_options> hints,
    const std::vector<message>& owned) {
  const bool is_failover = &log == &failover_;
  if (is_failover) {
    for (const auto& k : owned)
      index_.move_to(k, pending_log::failover);
    ++failover_appends_in_flight_;
  }
  const auto ec = co_await log.append(std::move(batch));
  if (is_failover)
    --failover_appends_in_flight_;
  if (ec) {
    // Duplicates waiting for these entries decide again: they find nothing and are written
    // themselves.
    forget(owned);
    // A hand-back may be waiting for this append to finish.
    replayer.appended();
    if (ec == buffer::errc::buffer_full) {
      refuse(out, 503, "buffer_full",
             is_failover
                 ? "PostgreSQL is unavailable and the file buffer is full; nothing was stored"
                 : "the QoS0 buffer is full; nothing was stored",
             5);
    } else {
      refuse(out, 503, "buffer_unavailable",
             "the file buffer could not take the write (" + ec.message() + "); nothing was stored",
             5);
    }
    if (const auto suppressed = append_failure_log_.admit()) {
      spdlog::error("push: {} append failed: {} ({} more such failures not logged)",
                    is_failover ? "failover" : "qos0", ec.message(), *suppressed);
    }
    co_return out;
  }
  for (const auto& k : owned)
    index_.mark_written(k);
  for (std::size_t slot : slots)
    out.items[slot].status = item_status::buffered;
  out.db_healthy = gate_.healthy() && mode_.mode() == push_mode::direct;
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
  s.failover_active = mode_.mode() != push_mode::direct;
  s.mode = mode_.mode();
  s.pending_index_entries = index_.size();
  s.failover = {failover_.stats(), failover_replayer_.replay_rate_per_second(),
                failover_replayer_.set_aside_total()};
  s.qos0 = {qos0_.stats(), qos0_replayer_.replay_rate_per_second(),
            qos0_replayer_.set_aside_total()};
  return s;
}

asio::awaitable<buffer::retry_result> push_service::retry_failed(buffer::retry_filter filter) {
  buffer::retry_result total;
  const std::size_t limit = filter.max_records;
  for (auto* log : {&failover_, &qos0_}) {
    // With the limit used up the call only counts what is left.
    filter.max_records = limit - total.retried;
    auto [ec, r] = co_await log->retry_failed(filter);
    if (ec)
      spdlog::error("push: retrying failed/ of {} failed: {}", log->name(), ec.message());
    total.retried += r.retried;
    total.remaining += r.remaining;
  }
  // Whatever the QoS0 hints were, retried records go now, in full batches.
  failover_replayer_.flush_now();
  qos0_replayer_.flush_now();
  co_return total;
}

}  // namespace sluice::push
