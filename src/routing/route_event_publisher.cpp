#include "sluice/routing/route_event_publisher.hpp"

#include <charconv>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

namespace sluice::routing {
namespace asio = boost::asio;

namespace {

// One round trip for the common case (nothing to publish, or another instance holds the
// lock): the lock attempt and the backlog for the gauge. Where the batch starts is read by a
// statement after it: this one's snapshot predates the lock, so a batch another instance
// committed while we waited for it would still look unpublished here.
constexpr std::string_view begin_sql = R"sql(BEGIN;
SELECT pg_try_advisory_xact_lock(8317151707346054514),
       (SELECT count(*) FROM sluice_route_events WHERE published_at IS NULL))sql";

// The batch is the events from `first` to `last`. Events are published in version order, so
// the unpublished ones are the newest, and new ones only come after `last`.
constexpr std::string_view mark_sql = R"sql(
UPDATE sluice_route_events SET published_at = clock_timestamp()
 WHERE registry_version BETWEEN $1 AND $2 AND published_at IS NULL)sql";

constexpr std::string_view first_unpublished_sql =
    "SELECT min(registry_version) FROM sluice_route_events WHERE published_at IS NULL";

constexpr std::string_view backlog_sql =
    "SELECT count(*) FROM sluice_route_events WHERE published_at IS NULL";

static_assert(route_event_publisher::lock_key == 8317151707346054514);

std::optional<std::int64_t> integer_of(const std::optional<std::string>& text) {
  if (!text)
    return std::nullopt;
  std::int64_t v = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, v);
  if (ec != std::errc{} || ptr != end)
    return std::nullopt;
  return v;
}

}  // namespace

amqp::outgoing_message route_event_message(const route_event& e) {
  amqp::outgoing_message m;
  m.exchange = route_event_publisher::exchange;
  m.routing_key = e.action;
  m.body = to_json(e);
  m.properties.content_type = "application/json";
  m.properties.delivery_mode = amqp::delivery_mode_persistent;
  m.properties.message_id = "route-event-" + std::to_string(e.registry_version);
  m.properties.type = "route." + e.action;
  m.properties.timestamp = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(e.created_at.time_since_epoch()).count());
  m.properties.app_id = "sluice";
  return m;
}

std::shared_ptr<route_event_publisher> route_event_publisher::create(
    asio::any_io_executor executor, std::shared_ptr<amqp::client> client, store::pg_pool& pool,
    metrics::registry& metrics, route_event_publisher_options options) {
  return std::shared_ptr<route_event_publisher>(new route_event_publisher(
      std::move(executor), std::move(client), pool, metrics, std::move(options)));
}

route_event_publisher::route_event_publisher(asio::any_io_executor executor,
                                             std::shared_ptr<amqp::client> client,
                                             store::pg_pool& pool, metrics::registry& metrics,
                                             route_event_publisher_options options)
    : executor_(std::move(executor)),
      client_(std::move(client)),
      pool_(pool),
      options_(std::move(options)),
      db_log_(std::chrono::seconds(10), 1),
      published_total_(metrics
                           .add_counter("sluice_route_events_published_total",
                                        "Route change events this instance published to the "
                                        "sluice.route-events exchange (confirmed and marked).")
                           .get()),
      unpublished_(metrics
                       .add_gauge("sluice_route_events_unpublished",
                                  "Route change events not yet published to RabbitMQ, as last "
                                  "read by this instance's publisher.")
                       .get()) {}

route_event_publisher::~route_event_publisher() = default;

void route_event_publisher::start() {
  const std::weak_ptr<route_event_publisher> weak = weak_from_this();
  client_->on_state_change([weak](amqp::client_state state) {
    if (const auto self = weak.lock()) {
      if (self->publisher_)
        self->publisher_->set_blocked(state == amqp::client_state::blocked);
      self->event_.notify_all();
    }
  });
  running_ = true;
  asio::co_spawn(executor_, run(), asio::detached);
}

asio::awaitable<void> route_event_publisher::stop() {
  auto self = shared_from_this();
  stopping_ = true;
  event_.notify_all();
  while (running_)
    co_await event_.wait_until(clock::time_point::max());
}

void route_event_publisher::wake() {
  woken_ = true;
  event_.notify_all();
}

bool route_event_publisher::channel_open() const {
  return channel_ && channel_->is_open() && publisher_;
}

asio::awaitable<void> route_event_publisher::run() {
  auto self = shared_from_this();
  while (!stopping_) {
    const auto state = client_->state();
    if (state != amqp::client_state::connected && state != amqp::client_state::blocked) {
      if (channel_)
        co_await drop_channel();
      // The backlog grows while RabbitMQ is away: that is when the gauge matters most.
      co_await refresh_backlog();
      co_await event_.wait_until(clock::now() + options_.poll);
      continue;
    }
    if (!channel_open()) {
      if (channel_)
        co_await drop_channel();
      if (const auto ec = co_await set_up_channel()) {
        co_await drop_channel();
        co_await event_.wait_until(clock::now() + options_.retry_interval);
        continue;
      }
    }
    woken_ = false;
    round r = round::failed;
    try {
      r = co_await publish_round();
    } catch (const std::exception& e) {
      // A round that throws is a failed round (its transaction dies with the lease): stop()
      // must still see the loop end, so nothing may escape it.
      spdlog::error("routing: route event round failed error=\"{}\"", e.what());
    }
    if (r == round::more || stopping_)
      continue;
    if (r == round::failed) {
      // A channel that saw a batch fail may still hold its unconfirmed messages for a re-send:
      // a new one, so that only the next batch (read again from the table) publishes them.
      co_await drop_channel();
      co_await event_.wait_until(clock::now() + options_.retry_interval);
      continue;
    }
    const auto until = clock::now() + options_.poll;
    while (!woken_ && !stopping_ && channel_open() && clock::now() < until)
      co_await event_.wait_until(until);
  }
  co_await drop_channel();
  running_ = false;
  event_.notify_all();
}

asio::awaitable<void> route_event_publisher::refresh_backlog() {
  const store::pg_statement count{.sql = backlog_sql, .name = "sluice_route_events_backlog"};
  const store::pg_result r =
      co_await pool_.execute(count, clock::now() + options_.statement_timeout);
  if (r.ec || r.rows.size() != 1 || r.rows.front().size() != 1)
    co_return;
  unpublished_.set(static_cast<double>(integer_of(r.rows.front()[0]).value_or(0)));
}

asio::awaitable<std::error_code> route_event_publisher::set_up_channel() {
  auto [ec, ch] = co_await client_->open_channel();
  if (ec) {
    spdlog::warn("routing: route event channel failed error=\"{}\"", ec.message());
    co_return ec;
  }
  channel_ = ch;
  const std::weak_ptr<route_event_publisher> weak = weak_from_this();
  ch->on_closed([weak](const amqp::close_reason&) {
    if (const auto self = weak.lock())
      self->event_.notify_all();
  });
  amqp::exchange_options durable;
  durable.durable = true;
  if (const auto dec = co_await ch->exchange_declare(exchange, "fanout", durable)) {
    spdlog::warn("routing: declaring exchange {} failed reason=\"{}\"", exchange,
                 ch->reason().to_string());
    co_return dec;
  }
  if (const auto cec = co_await ch->confirm_select())
    co_return cec;
  amqp::publisher_options po;
  po.confirm_window = options_.batch;
  po.publish_timeout = options_.confirm_timeout;
  po.confirm_timeout = options_.confirm_timeout;
  publisher_ = amqp::publisher::create(po);
  publisher_->set_blocked(client_->state() == amqp::client_state::blocked);
  publisher_->attach(ch);
  publisher_->on_ready([weak] {
    if (const auto self = weak.lock())
      self->event_.notify_all();
  });
  spdlog::info("routing: publishing route events to exchange {}", exchange);
  co_return std::error_code{};
}

asio::awaitable<void> route_event_publisher::drop_channel() {
  if (publisher_) {
    publisher_->close();
    publisher_.reset();
  }
  if (channel_) {
    const auto ch = std::move(channel_);
    channel_.reset();
    if (ch->is_open())
      co_await ch->close();
  }
}

asio::awaitable<route_event_publisher::round> route_event_publisher::publish_round() {
  const auto deadline = clock::now() + options_.statement_timeout;
  auto [aec, lease] = co_await pool_.acquire(deadline);
  if (aec) {
    if (const auto suppressed = db_log_.admit()) {
      spdlog::warn("routing: route events not published: PostgreSQL error=\"{}\" suppressed={}",
                   aec.message(), *suppressed);
    }
    co_return round::failed;
  }
  store::pg_connection& conn = *lease;
  const store::pg_result begun = co_await conn.execute(begin_sql, deadline);
  if (begun.ec || begun.rows.size() != 1 || begun.rows.front().size() != 2) {
    if (const auto suppressed = db_log_.admit()) {
      spdlog::warn("routing: route events not published: PostgreSQL error=\"{}\" suppressed={}",
                   begun.message.empty() ? begun.ec.message() : begun.message, *suppressed);
    }
    co_return round::failed;
  }
  const bool locked = begun.rows.front()[0] == "t";
  const auto backlog = integer_of(begun.rows.front()[1]).value_or(0);
  unpublished_.set(static_cast<double>(backlog));
  // The lease's end rolls back a transaction left open (the connection is dropped, not
  // reused); an explicit ROLLBACK keeps the connection.
  const auto finish = [&conn, deadline](const char* sql) -> asio::awaitable<bool> {
    const store::pg_result r = co_await conn.execute(sql, deadline);
    co_return !r.ec;
  };
  if (!locked || backlog == 0) {
    co_await finish("ROLLBACK");
    co_return round::idle;
  }

  // A statement of its own, so its snapshot is taken with the lock held (READ COMMITTED).
  const store::pg_result start = co_await conn.execute(first_unpublished_sql, deadline);
  if (start.ec || start.rows.size() != 1 || start.rows.front().size() != 1) {
    co_await finish("ROLLBACK");
    co_return round::failed;
  }
  const auto first = integer_of(start.rows.front()[0]);
  if (!first) {
    // Published by another instance between the two statements' snapshots.
    co_await finish("ROLLBACK");
    co_return round::idle;
  }
  // Read as the change log reads them (the same decoding as the caches' catch-up).
  auto batch = co_await route_store::events_since(conn, *first - 1, options_.batch, deadline);
  if (batch.status || batch.events.empty()) {
    co_await finish("ROLLBACK");
    co_return round::failed;
  }
  const std::int64_t last = batch.events.back().registry_version;
  const bool confirmed = co_await publish_confirmed(batch.events);
  if (!confirmed) {
    co_await finish("ROLLBACK");
    co_return round::failed;
  }
  const auto mark_deadline = clock::now() + options_.statement_timeout;
  store::pg_statement mark{.sql = mark_sql, .name = "sluice_route_events_mark"};
  mark.params.add(*first);
  mark.params.add(last);
  const store::pg_result marked = co_await conn.execute(mark, mark_deadline);
  if (marked.ec) {
    co_await finish("ROLLBACK");
    co_return round::failed;
  }
  const store::pg_result committed = co_await conn.execute("COMMIT", mark_deadline);
  if (committed.ec) {
    spdlog::warn(
        "routing: route events {}..{} published but not marked (they will be published "
        "again) error=\"{}\"",
        *first, last, committed.message);
    co_return round::failed;
  }
  const auto n = batch.events.size();
  published_ += n;
  published_total_.inc(static_cast<double>(n));
  const auto left = backlog - static_cast<std::int64_t>(n);
  unpublished_.set(static_cast<double>(left > 0 ? left : 0));
  spdlog::debug("routing: published route events {}..{}", *first, last);
  co_return n == options_.batch ? round::more : round::idle;
}

asio::awaitable<bool> route_event_publisher::publish_confirmed(
    const std::vector<route_event>& events) {
  struct confirms {
    std::size_t pending = 0;
    bool all_acked = true;
  };
  const auto state = std::make_shared<confirms>();
  const std::weak_ptr<route_event_publisher> weak = weak_from_this();
  const amqp::publish_callback on_result = [state, weak](amqp::publish_result r) {
    --state->pending;
    if (r.outcome != amqp::publish_outcome::acked) {
      state->all_acked = false;
      spdlog::warn("routing: a route event was not confirmed outcome={} error=\"{}\"",
                   amqp::to_string(r.outcome), r.reply_text);
    }
    if (const auto self = weak.lock())
      self->event_.notify_all();
  };
  const auto deadline = clock::now() + options_.confirm_timeout;
  const std::shared_ptr<amqp::publisher> pub = publisher_;
  for (const auto& e : events) {
    if (!pub || !channel_open())
      co_return false;
    amqp::outgoing_message m = route_event_message(e);
    ++state->pending;
    if (const auto ec = co_await pub->publish(std::move(m), on_result, deadline)) {
      --state->pending;
      spdlog::warn("routing: publishing route event {} failed error=\"{}\"", e.registry_version,
                   ec.message());
      co_return false;
    }
  }
  while (state->pending > 0 && state->all_acked && !stopping_ && channel_open() &&
         clock::now() < deadline)
    co_await event_.wait_until(deadline);
  co_return state->pending == 0 && state->all_acked;
}

}  // namespace sluice::routing
