#include "sluice/relay/relay_service.hpp"

#include <algorithm>

#include "sluice/relay/message_format.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

bool relay_service::log_limiter::allow(clock::time_point now, std::chrono::seconds period) {
  if (now < next) {
    ++suppressed;
    return false;
  }
  next = now + period;
  return true;
}

std::shared_ptr<relay_service> relay_service::create(asio::any_io_executor executor,
                                                     store::pg_pool& pool, queue_modes& modes,
                                                     metrics::registry& metrics,
                                                     relay_options options) {
  auto self = std::shared_ptr<relay_service>(
      new relay_service(std::move(executor), pool, modes, metrics, std::move(options)));
  const std::weak_ptr<relay_service> weak = self;
  metrics.on_collect([weak] {
    if (const auto s = weak.lock())
      s->collect();
  });
  return self;
}

relay_service::relay_service(asio::any_io_executor executor, store::pg_pool& pool,
                             queue_modes& modes, metrics::registry& metrics, relay_options options)
    : executor_(std::move(executor)),
      modes_(modes),
      options_(std::move(options)),
      store_(pool),
      marker_(executor_, store_, options_.marker),
      client_(amqp::client::create(executor_, options_.client)),
      publisher_(client_->get_publisher()),
      fifo_(options_.queue_max, options_.queue_max_bytes),
      defer_after_(options_.claim.grace / 2),
      published_(metrics
                     .add_counter("sluice_relay_published_total",
                                  "Messages RabbitMQ confirmed (basic.ack), re-sends included.")
                     .get()),
      nacked_(metrics
                  .add_counter("sluice_relay_nacked_total",
                               "Publishes RabbitMQ refused (basic.nack); left for the sweeper.")
                  .get()),
      returned_(metrics
                    .add_counter("sluice_relay_returned_total",
                                 "Queue-mode publishes RabbitMQ could not route (basic.return); "
                                 "left for the sweeper.")
                    .get()),
      failed_(metrics
                  .add_counter("sluice_relay_failed_total",
                               "Publishes never confirmed (channel error, shutdown, refused "
                               "declare); left for the sweeper.")
                  .get()),
      deferred_(metrics
                    .add_counter("sluice_relay_deferred_total",
                                 "Committed messages dropped from memory (queue full, or waited "
                                 "too long) and left for the sweeper.")
                    .get()),
      swept_(metrics
                 .add_counter("sluice_relay_swept_total",
                              "Unpublished rows the sweeper claimed and handed to the publisher.")
                 .get()),
      confirm_latency_(metrics
                           .add_histogram("sluice_relay_confirm_latency_seconds",
                                          "From a message entering the confirm window to "
                                          "RabbitMQ's ack.",
                                          {}, metrics::latency_buckets())
                           .get()),
      backlog_(metrics
                   .add_gauge("sluice_relay_backlog",
                              "Rows not yet marked published (measured every sweep interval).")
                   .get()),
      backlog_age_(metrics
                       .add_gauge("sluice_relay_backlog_oldest_age_seconds",
                                  "Age of the oldest row not yet marked published (0 when none).")
                       .get()),
      queue_items_(
          metrics
              .add_gauge("sluice_relay_queue_items",
                         "Committed messages in the relay's memory waiting for a confirm slot.")
              .get()),
      unconfirmed_(metrics
                       .add_gauge("sluice_relay_unconfirmed",
                                  "Publishes in the confirm window, waiting for RabbitMQ's answer.")
                       .get()),
      amqp_connected_(metrics
                          .add_gauge("sluice_amqp_connected",
                                     "1 while the AMQP connection to RabbitMQ is up (even if "
                                     "blocked).")
                          .get()),
      amqp_blocked_(metrics
                        .add_gauge("sluice_amqp_blocked",
                                   "1 while RabbitMQ blocks publishing (connection.blocked: a "
                                   "memory or disk alarm).")
                        .get()),
      amqp_reconnects_(metrics
                           .add_counter("sluice_amqp_reconnects_total",
                                        "AMQP connections set up after a lost one.")
                           .get()) {}

relay_service::~relay_service() = default;

void relay_service::stored(std::vector<message> batch) {
  if (stopping_ || batch.empty())
    return;
  if (!fifo_.push(batch, clock::now())) {
    deferred_.inc(static_cast<double>(batch.size()));
    if (overflow_log_.allow(clock::now())) {
      spdlog::warn(
          "relay: in-memory queue full items={} bytes={}; {} committed messages left to the "
          "sweeper (similar events not logged: {})",
          fifo_.size(), fifo_.bytes(), batch.size(), overflow_log_.suppressed);
      overflow_log_.suppressed = 0;
    }
    return;
  }
  if (wake_.waiters() != 0)
    wake_.notify_all();
}

void relay_service::start() {
  if (started_)
    return;
  started_ = true;
  const std::weak_ptr<relay_service> weak = weak_from_this();
  client_->on_state_change([weak](amqp::client_state s) {
    if (const auto self = weak.lock())
      self->on_state(s);
  });
  marker_.on_settled([weak](std::span<const uuid> ids) {
    if (const auto self = weak.lock()) {
      for (const auto& id : ids)
        self->in_flight_.erase(id);
    }
  });
  client_->start();
  spawn(&relay_service::modes_loop, "modes");
  spawn(&relay_service::marker_loop, "marker");
  spawn(&relay_service::publish_loop, "publisher");
  spawn(&relay_service::sweep_loop, "sweeper");
  spawn(&relay_service::backlog_loop, "backlog");
  spdlog::info(
      "relay: publishing to RabbitMQ at {} queue_type={} confirm_window={} sweep_grace_ms={}",
      options_.client.connection.server.to_string(), amqp::to_string(options_.queue_type),
      options_.client.publisher.confirm_window, options_.claim.grace.count());
}

void relay_service::spawn(asio::awaitable<void> (relay_service::*loop)(), const char* name) {
  ++loops_running_;
  asio::co_spawn(
      executor_,
      [self = shared_from_this(), loop]() -> asio::awaitable<void> { co_await ((*self).*loop)(); },
      [self = shared_from_this(), name](std::exception_ptr e) {
        --self->loops_running_;
        self->loops_done_.notify_all();
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            spdlog::error("relay: {} loop ended by exception what={}", name, ex.what());
          }
        }
      });
}

asio::awaitable<void> relay_service::stop(std::chrono::milliseconds grace) {
  if (!started_ || stopping_)
    co_return;
  auto self = shared_from_this();
  const auto deadline = clock::now() + grace;
  stopping_ = true;
  drain_deadline_ = deadline;
  wake_.notify_all();
  sweep_kick_.notify_all();
  stop_event_.notify_all();
  while (publish_loop_running_ && clock::now() < deadline)
    co_await loops_done_.wait_until(deadline);
  const bool idle = co_await publisher_->wait_idle(deadline);
  if (!fifo_.empty()) {
    deferred_.inc(static_cast<double>(fifo_.size()));
    spdlog::info("relay: {} messages not published before shutdown; a sweeper publishes them",
                 fifo_.size());
  }
  if (!idle) {
    spdlog::info("relay: {} publishes unconfirmed at shutdown; a sweeper publishes them again",
                 publisher_->in_flight());
  }
  co_await client_->stop();
  // Marks of what was confirmed get a bounded moment of their own even when the grace is
  // spent: each one saves a duplicate publish later.
  co_await marker_.stop(std::max(deadline, clock::now() + 2s));
  const auto until = clock::now() + 5s;
  while (loops_running_ != 0 && clock::now() < until)
    co_await loops_done_.wait_until(until);
  spdlog::info("relay: stopped published={} marked={}", published_.value(), marker_.marked_total());
}

relay_health relay_service::health() const {
  const auto state = client_->state();
  if (state == amqp::client_state::connected)
    return {true, "connected"};
  if (state == amqp::client_state::blocked) {
    const auto conn = client_->current_connection();
    return {false, "connected but blocked by the broker: " +
                       (conn ? conn->blocked_reason() : std::string("unknown reason"))};
  }
  std::string detail = amqp::to_string(state);
  if (client_->last_error().error)
    detail += "; last error: " + client_->last_error().to_string();
  return {false, detail};
}

bool relay_service::connected() const {
  return client_->state() == amqp::client_state::connected;
}

bool relay_service::window_open() const {
  return publisher_->ready() && publisher_->in_flight() < publisher_->options().confirm_window;
}

void relay_service::defer_aged(clock::time_point now) {
  const std::size_t n = fifo_.drop_enqueued_before(now - defer_after_);
  if (n == 0)
    return;
  deferred_.inc(static_cast<double>(n));
  if (deferred_log_.allow(now)) {
    spdlog::warn(
        "relay: {} messages waited over {} ms in memory (RabbitMQ {}); left to the sweeper "
        "(similar events not logged: {})",
        n, defer_after_.count(), amqp::to_string(client_->state()), deferred_log_.suppressed);
    deferred_log_.suppressed = 0;
  }
}

void relay_service::sync_connection() {
  // The client counts a connection only once it is fully set up, but the publisher is
  // attached (and this loop may run) a little earlier: the connection's identity tells too.
  const std::uint64_t generation = client_->stats().connects;
  const void* conn = client_->current_connection().get();
  if (generation == declared_generation_ && conn == declared_connection_)
    return;
  declared_generation_ = generation;
  declared_connection_ = conn;
  declared_queues_.clear();
  declared_exchanges_.clear();
  declare_channel_.reset();
}

bool relay_service::is_declared(std::string_view queue, queue_mode mode) const {
  const name_set& set = mode == queue_mode::queue ? declared_queues_ : declared_exchanges_;
  return set.find(queue) != set.end();
}

asio::awaitable<relay_service::declare_outcome> relay_service::declare(std::string queue,
                                                                       queue_mode mode) {
  auto self = shared_from_this();
  const std::string key = std::string(to_string(mode)) + ' ' + queue;
  if (const auto it = refused_until_.find(key); it != refused_until_.end()) {
    if (clock::now() < it->second)
      co_return declare_outcome::refused;
    refused_until_.erase(it);
  }
  const std::uint64_t generation = declared_generation_;
  if (!declare_channel_ || !declare_channel_->is_open()) {
    auto [ec, ch] = co_await client_->open_channel();
    if (ec)
      co_return declare_outcome::retry;
    declare_channel_ = std::move(ch);
  }
  const auto ch = declare_channel_;
  const std::string name = amqp_name(queue);
  std::error_code ec;
  if (mode == queue_mode::queue) {
    amqp::queue_options o;
    o.arguments = amqp::queue_arguments(options_.queue_type);
    auto [qec, ok] = co_await ch->queue_declare(name, o);
    ec = qec;
  } else {
    const amqp::exchange_options o;
    const std::string type = "fanout";
    ec = co_await ch->exchange_declare(name, type, o);
  }
  if (ec == amqp::reply_code::precondition_failed) {
    // It exists with other arguments (e.g. a classic queue declared before
    // RABBITMQ_QUEUE_TYPE=quorum): it still takes the messages.
    spdlog::warn("relay: {} {} exists with other arguments ({}); publishing to it as it is",
                 mode == queue_mode::queue ? "queue" : "exchange", name, ch->reason().to_string());
    ec = {};
  }
  if (!ec) {
    if (generation == declared_generation_ && generation == client_->stats().connects &&
        declared_connection_ == client_->current_connection().get()) {
      (mode == queue_mode::queue ? declared_queues_ : declared_exchanges_).insert(queue);
    }
    co_return declare_outcome::declared;
  }
  if (ec.category() == amqp::reply_category() && !ch->closed_with_connection()) {
    // The broker said no (access refused, not allowed, ...): retrying at once would only
    // fail again; the rows stay unpublished and the sweeper tries again later.
    spdlog::error("relay: cannot declare {} {}: {}; its messages stay unpublished",
                  mode == queue_mode::queue ? "queue" : "exchange", name, ch->reason().to_string());
    refused_until_[key] = clock::now() + 10s;
    co_return declare_outcome::refused;
  }
  co_return declare_outcome::retry;
}

asio::awaitable<relay_service::handoff> relay_service::publish(message m, queue_mode mode) {
  const uuid id = m.id;
  amqp::outgoing_message out = to_outgoing(m, mode);
  in_flight_.insert(id);
  const std::weak_ptr<relay_service> weak = weak_from_this();
  amqp::publish_callback on_result = [weak, id](amqp::publish_result r) {
    if (const auto self = weak.lock())
      self->on_result(id, r);
  };
  const auto ec = co_await publisher_->publish(std::move(out), std::move(on_result));
  if (!ec)
    co_return handoff::sent;
  in_flight_.erase(id);
  failed_.inc();
  if (ec != amqp::errc::invalid_argument)
    co_return handoff::publisher_unavailable;
  // This message can never go out as it is; the others can. It stays in the outbox (the
  // backlog metrics show it) for an operator to look at.
  if (unencodable_log_.allow(clock::now())) {
    spdlog::error(
        "relay: id={} cannot be encoded as an AMQP message (a name or property too long); it "
        "stays unpublished in sluice_relay_outbox (not logged since: {})",
        id.to_string(), unencodable_log_.suppressed);
    unencodable_log_.suppressed = 0;
  }
  co_return handoff::unencodable;
}

void relay_service::on_result(const uuid& id, const amqp::publish_result& r) {
  const auto now = clock::now();
  switch (r.outcome) {
    case amqp::publish_outcome::acked:
      published_.inc();
      confirm_latency_.observe(seconds(r.latency));
      marker_.add(id);
      break;
    case amqp::publish_outcome::nacked:
      nacked_.inc();
      in_flight_.erase(id);
      if (nack_log_.allow(now)) {
        spdlog::warn("relay: RabbitMQ nacked id={}; left for the sweeper (not logged since: {})",
                     id.to_string(), nack_log_.suppressed);
        nack_log_.suppressed = 0;
      }
      break;
    case amqp::publish_outcome::returned:
      returned_.inc();
      in_flight_.erase(id);
      // The queue vanished (deleted by someone) since we declared it: declare again.
      declared_queues_.clear();
      if (return_log_.allow(now)) {
        spdlog::warn(
            "relay: RabbitMQ returned id={} reason=\"{}\"; queue declared again, message left for "
            "the sweeper (not logged since: {})",
            id.to_string(), r.reply_text, return_log_.suppressed);
        return_log_.suppressed = 0;
      }
      break;
    case amqp::publish_outcome::failed:
      failed_.inc();
      in_flight_.erase(id);
      // 404 on the publisher channel: an exchange we believed declared is gone (a broker
      // that lost its definitions): declare everything again.
      if (r.error == amqp::reply_code::not_found) {
        declared_queues_.clear();
        declared_exchanges_.clear();
      }
      break;
  }
  if (wake_.waiters() != 0)
    wake_.notify_all();
}

void relay_service::on_state(amqp::client_state state) {
  const bool up = state == amqp::client_state::connected || state == amqp::client_state::blocked;
  // Not when stopping: nobody re-sends then, and other instances should sweep at once.
  if (was_up_ && !up && !stopping_ && state != amqp::client_state::stopped && !in_flight_.empty())
    spawn(&relay_service::hold_in_flight, "hold");
  was_up_ = up;
  if (state == amqp::client_state::connected)
    sweep_kick_.notify_all();
  wake_.notify_all();
}

// The connection is gone with publishes unconfirmed: they are re-sent after the reconnect, so
// keep other instances' sweepers off their rows until then (a lease, not forever: if this
// instance dies meanwhile, the rows are swept once it runs out).
asio::awaitable<void> relay_service::hold_in_flight() {
  const std::vector<uuid> ids(in_flight_.begin(), in_flight_.end());
  const auto ec =
      co_await store_.hold(ids, options_.claim.lease, clock::now() + options_.statement_timeout);
  if (ec) {
    spdlog::warn(
        "relay: cannot hold {} unconfirmed rows for the re-send error=\"{}\"; another "
        "instance may publish them too",
        ids.size(), ec.message());
  } else {
    spdlog::info("relay: connection lost with {} publishes unconfirmed; held for the re-send",
                 ids.size());
  }
}

void relay_service::collect() {
  const auto state = client_->state();
  amqp_connected_.set(
      state == amqp::client_state::connected || state == amqp::client_state::blocked ? 1 : 0);
  amqp_blocked_.set(state == amqp::client_state::blocked ? 1 : 0);
  const std::uint64_t reconnects = client_->stats().reconnects;
  if (reconnects > reconnects_reported_) {
    amqp_reconnects_.inc(static_cast<double>(reconnects - reconnects_reported_));
    reconnects_reported_ = reconnects;
  }
  queue_items_.set(static_cast<double>(fifo_.size()));
  unconfirmed_.set(static_cast<double>(publisher_->in_flight()));
}

asio::awaitable<void> relay_service::publish_loop() {
  publish_loop_running_ = true;
  while (true) {
    const auto now = clock::now();
    if (stopping_ && (fifo_.empty() || now >= drain_deadline_ || !connected()))
      break;
    defer_aged(now);
    if (fifo_.empty() || !modes_.loaded() || !window_open()) {
      // The timeout only paces defer_aged() while RabbitMQ is away; every event that can
      // unblock this loop notifies it.
      const auto until = now + 250ms;
      co_await wake_.wait_until(stopping_ ? std::min(until, drain_deadline_) : until);
      continue;
    }
    sync_connection();
    const queue_mode mode = modes_.mode_of(fifo_.front().msg.queue);
    if (!is_declared(fifo_.front().msg.queue, mode)) {
      const std::string queue = fifo_.front().msg.queue;
      const auto outcome = co_await declare(queue, mode);
      if (outcome == declare_outcome::retry) {
        // Not wake_: every push would end this pause early.
        co_await stop_event_.wait_until(clock::now() + 100ms);
      } else if (outcome == declare_outcome::refused && !fifo_.empty() &&
                 fifo_.front().msg.queue == queue) {
        fifo_.pop();
        failed_.inc();
      }
      continue;
    }
    auto entry = fifo_.pop();
    co_await publish(std::move(entry.msg), mode);
  }
  publish_loop_running_ = false;
  loops_done_.notify_all();
}

asio::awaitable<void> relay_service::sweep_loop() {
  while (!stopping_) {
    if (!connected() || !modes_.loaded() || !schema_ready()) {
      co_await sweep_kick_.wait_until(clock::now() + options_.sweep_interval);
      continue;
    }
    claim_result batch = co_await claim();
    while (!batch.rows.empty()) {
      std::vector<uuid> left;
      claim_result next;
      if (batch.rows.size() >= options_.claim.batch && !stopping_) {
        // A full batch: more is waiting. Claim the next one while this one is published, so
        // a backlog drains at the broker's pace rather than one round trip per batch slower.
        auto [published, claimed] = co_await (publish_claimed(batch.rows, left) && claim());
        next = std::move(claimed);
      } else {
        co_await publish_claimed(batch.rows, left);
      }
      if (!left.empty() || stopping_) {
        for (const auto& m : next.rows)
          left.push_back(m.id);
        next.rows.clear();
        if (!left.empty()) {
          const auto ec = co_await store_.release(left, clock::now() + options_.statement_timeout);
          spdlog::debug("relay: sweeper released claims rows={} error=\"{}\"", left.size(),
                        ec ? ec.message() : "");
        }
      }
      batch = std::move(next);
    }
    if (stopping_)
      break;
    co_await sweep_kick_.wait_until(clock::now() + options_.sweep_interval);
  }
}

asio::awaitable<claim_result> relay_service::claim() {
  claim_result c = co_await store_.claim(options_.claim, clock::now() + options_.statement_timeout);
  if (c.ec && sweep_log_.allow(clock::now())) {
    spdlog::warn("relay: sweeper cannot claim rows error=\"{}\" (not logged since: {})",
                 c.error_text, sweep_log_.suppressed);
    sweep_log_.suppressed = 0;
  }
  if (!c.rows.empty())
    spdlog::debug("relay: sweeper claimed rows={}", c.rows.size());
  co_return c;
}

asio::awaitable<std::size_t> relay_service::publish_claimed(std::vector<message>& rows,
                                                            std::vector<uuid>& left) {
  std::size_t handed = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    message& m = rows[i];
    if (stopping_ || !connected()) {
      for (; i < rows.size(); ++i)
        left.push_back(rows[i].id);
      break;
    }
    if (in_flight_.contains(m.id))
      continue;
    sync_connection();
    const queue_mode mode = modes_.mode_of(m.queue);
    if (!is_declared(m.queue, mode)) {
      const auto outcome = co_await declare(m.queue, mode);
      if (outcome == declare_outcome::retry) {
        for (; i < rows.size(); ++i)
          left.push_back(rows[i].id);
        break;
      }
      if (outcome == declare_outcome::refused) {
        failed_.inc();
        continue;
      }
    }
    const uuid id = m.id;
    swept_.inc();
    const handoff result = co_await publish(std::move(m), mode);
    if (result == handoff::unencodable)
      continue;  // its claim runs out; the rows after it are not held up
    if (result == handoff::publisher_unavailable) {
      left.push_back(id);
      for (++i; i < rows.size(); ++i)
        left.push_back(rows[i].id);
      break;
    }
    ++handed;
  }
  co_return handed;
}

asio::awaitable<void> relay_service::backlog_loop() {
  while (!stopping_) {
    if (!schema_ready()) {
      co_await stop_event_.wait_until(clock::now() + 200ms);
      continue;
    }
    const backlog_result b = co_await store_.backlog(clock::now() + options_.statement_timeout);
    if (!b.ec) {
      backlog_.set(static_cast<double>(b.rows));
      backlog_age_.set(b.oldest_age_seconds.value_or(0.0));
    } else if (backlog_log_.allow(clock::now(), 60s)) {
      spdlog::warn("relay: cannot measure the backlog error=\"{}\"", b.error_text);
    }
    co_await stop_event_.wait_until(clock::now() + options_.sweep_interval);
  }
}

asio::awaitable<void> relay_service::modes_loop() {
  while (!stopping_) {
    if (!schema_ready()) {
      co_await stop_event_.wait_until(clock::now() + 200ms);
      continue;
    }
    const bool was_loaded = modes_.loaded();
    const auto ec = co_await modes_.refresh(clock::now() + options_.statement_timeout);
    if (ec && modes_log_.allow(clock::now(), 60s)) {
      spdlog::warn("relay: cannot read queue modes error=\"{}\"{}", ec.message(),
                   was_loaded ? "" : "; publishing waits for them");
    }
    if (!was_loaded && modes_.loaded())
      wake_.notify_all();
    const auto wait = modes_.loaded() ? options_.modes_refresh_interval : 500ms;
    co_await stop_event_.wait_until(clock::now() + wait);
  }
}

asio::awaitable<void> relay_service::marker_loop() {
  co_await marker_.run();
}

}  // namespace sluice::relay
