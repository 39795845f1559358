#include "sluice/amqp/client.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

namespace sluice::amqp {

namespace asio = boost::asio;

const char* to_string(client_state state) {
  switch (state) {
    case client_state::stopped:
      return "stopped";
    case client_state::connecting:
      return "connecting";
    case client_state::connected:
      return "connected";
    case client_state::blocked:
      return "blocked";
    case client_state::reconnecting:
      return "reconnecting";
  }
  return "unknown";
}

std::shared_ptr<client> client::create(asio::any_io_executor executor, client_options options) {
  return std::shared_ptr<client>(new client(std::move(executor), std::move(options)));
}

client::client(asio::any_io_executor executor, client_options options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      publisher_(options_.enable_publisher ? publisher::create(options_.publisher) : nullptr),
      rng_(std::random_device{}()) {}

client::~client() = default;

void client::on_state_change(std::function<void(client_state)> listener) {
  state_listeners_.push_back(std::move(listener));
}

void client::add_consumer(consumer_spec spec) {
  auto slot = std::make_shared<consumer_slot>();
  slot->spec = std::move(spec);
  consumers_.push_back(std::move(slot));
  event_.notify_all();
}

void client::set_state(client_state s) {
  if (state_ == s) {
    return;
  }
  state_ = s;
  for (const auto& l : std::vector(state_listeners_)) {
    l(s);
  }
  event_.notify_all();
}

void client::start() {
  if (started_) {
    return;
  }
  started_ = true;
  running_ = true;
  asio::co_spawn(
      executor_, [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->run(); },
      [weak = weak_from_this()](std::exception_ptr e) {
        if (!e) {
          return;
        }
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("amqp: supervisor ended by exception what={}", ex.what());
        } catch (...) {
          spdlog::error("amqp: supervisor ended by unknown exception");
        }
        if (const auto self = weak.lock()) {
          self->running_ = false;
          self->set_state(client_state::stopped);
        }
      });
}

asio::awaitable<void> client::stop() {
  auto self = shared_from_this();
  stopping_ = true;
  event_.notify_all();
  if (connection_ && connection_->current_state() == connection::state::connecting) {
    connection_->abort(make_error_code(errc::shutting_down));
  }
  const auto deadline = clock::now() + options_.stop_timeout;
  while (running_) {
    if (co_await event_.wait_until(deadline) == async_event::wake::timed_out && running_) {
      if (connection_) {
        connection_->abort(make_error_code(errc::shutting_down));
      }
      break;
    }
  }
  if (publisher_) {
    publisher_->close();
  }
  set_state(client_state::stopped);
}

asio::awaitable<bool> client::wait_connected(clock::time_point deadline) {
  auto self = shared_from_this();
  while (state_ != client_state::connected && state_ != client_state::blocked) {
    if (stopping_) {
      co_return false;
    }
    if (co_await event_.wait_until(deadline) == async_event::wake::timed_out) {
      co_return state_ == client_state::connected || state_ == client_state::blocked;
    }
  }
  co_return true;
}

asio::awaitable<std::tuple<std::error_code, std::shared_ptr<channel>>> client::open_channel() {
  auto self = shared_from_this();
  const auto conn = connection_;
  if (!conn || !conn->is_open()) {
    co_return std::tuple{make_error_code(errc::not_connected), std::shared_ptr<channel>{}};
  }
  co_return co_await conn->open_channel();
}

std::chrono::milliseconds client::jittered(std::chrono::milliseconds delay) {
  const auto half = delay.count() / 2;
  std::uniform_int_distribution<std::int64_t> dist(0, std::max<std::int64_t>(half, 0));
  return std::chrono::milliseconds(delay.count() - half + dist(rng_));
}

asio::awaitable<void> client::back_off(std::chrono::milliseconds& delay, const char* why) {
  const auto wait = jittered(delay);
  spdlog::warn("amqp: {} host={} port={} reason=\"{}\" retry_in_ms={}", why,
               options_.connection.server.host, options_.connection.server.port,
               last_error_.to_string(), wait.count());
  const auto until = clock::now() + wait;
  while (!stopping_ && clock::now() < until) {
    co_await event_.wait_until(until);
  }
  delay = std::min(delay * 2, options_.reconnect_max_delay);
}

asio::awaitable<void> client::run() {
  auto delay = options_.reconnect_initial_delay;
  bool had_connection = false;
  while (!stopping_) {
    set_state(had_connection ? client_state::reconnecting : client_state::connecting);
    auto conn = connection::create(executor_, options_.connection);
    connection_ = conn;
    std::error_code ec = co_await conn->open();
    if (!ec) {
      ec = co_await setup(conn);
    }
    if (ec) {
      ++stats_.connect_failures;
      if (conn->current_state() == connection::state::closed && conn->reason().error) {
        last_error_ = conn->reason();
      } else if (!last_error_.error || last_error_.error != ec) {
        last_error_ = close_reason{};
        last_error_.error = ec;
      }
      if (conn->current_state() != connection::state::closed) {
        co_await conn->close();
      }
      connection_.reset();
      if (stopping_) {
        break;
      }
      co_await back_off(delay, "connect failed");
      continue;
    }
    ++stats_.connects;
    if (had_connection) {
      ++stats_.reconnects;
      spdlog::info("amqp: reconnected host={} port={} reconnects={}",
                   options_.connection.server.host, options_.connection.server.port,
                   stats_.reconnects);
    }
    had_connection = true;
    set_state(conn->is_blocked() ? client_state::blocked : client_state::connected);
    const auto connected_at = clock::now();

    co_await serve(conn);

    if (conn->current_state() == connection::state::closed) {
      ++stats_.connection_losses;
      last_error_ = conn->reason();
    } else {
      co_await conn->close();
    }
    connection_.reset();
    // A connection that dies soon after it came up (a broker closing it on every attempt, or
    // something we send that it refuses) must not turn into a reconnect loop: the backoff
    // only starts over once a connection has lasted.
    if (clock::now() - connected_at >= options_.stable_after) {
      delay = options_.reconnect_initial_delay;
    } else if (!stopping_) {
      co_await back_off(delay, "connection lost soon after connecting");
    }
  }
  running_ = false;
  set_state(client_state::stopped);
  event_.notify_all();
}

asio::awaitable<std::error_code> client::setup(const std::shared_ptr<connection>& conn) {
  const std::weak_ptr<client> weak = weak_from_this();
  conn->on_blocked([weak](bool blocked) {
    if (const auto self = weak.lock()) {
      if (self->publisher_) {
        self->publisher_->set_blocked(blocked);
      }
      if (self->state_ == client_state::connected || self->state_ == client_state::blocked) {
        self->set_state(blocked ? client_state::blocked : client_state::connected);
      }
    }
  });
  conn->on_closed([weak](const close_reason&) {
    if (const auto self = weak.lock()) {
      self->event_.notify_all();
    }
  });
  if (topology_) {
    auto [ec, ch] = co_await conn->open_channel();
    if (ec) {
      co_return ec;
    }
    ec = co_await topology_(*ch);
    if (ec) {
      last_error_ = ch->reason().error ? ch->reason() : close_reason{ec, 0, {}, 0, 0};
      spdlog::error("amqp: topology failed reason=\"{}\"", last_error_.to_string());
      co_return ec;
    }
    co_await ch->close();
  }
  if (publisher_) {
    if (const auto ec = co_await attach_publisher(conn)) {
      co_return ec;
    }
  }
  co_await start_consumers(conn);
  co_return std::error_code{};
}

asio::awaitable<std::error_code> client::attach_publisher(const std::shared_ptr<connection>& conn) {
  auto [ec, ch] = co_await conn->open_channel();
  if (!ec) {
    ec = co_await ch->confirm_select();
  }
  if (ec) {
    spdlog::warn("amqp: publisher channel failed error=\"{}\"", ec.message());
    co_return ec;
  }
  const std::weak_ptr<client> weak = weak_from_this();
  ch->on_closed([weak](const close_reason&) {
    if (const auto self = weak.lock()) {
      self->event_.notify_all();
    }
  });
  publisher_->attach(ch);
  co_return std::error_code{};
}

asio::awaitable<void> client::start_consumers(const std::shared_ptr<connection>& conn) {
  const std::weak_ptr<client> weak = weak_from_this();
  for (std::size_t i = 0; i < consumers_.size() && conn->is_open() && !stopping_; ++i) {
    const auto slot = consumers_[i];
    if (slot->live && slot->live->is_open() && !slot->ended) {
      continue;
    }
    if (slot->live && slot->live->is_open()) {
      co_await slot->live->close();
    }
    slot->live.reset();
    slot->ended = false;
    auto [ec, ch] = co_await conn->open_channel();
    if (!ec && slot->spec.prefetch > 0) {
      ec = co_await ch->basic_qos(slot->spec.prefetch);
    }
    if (!ec) {
      const std::weak_ptr<consumer_slot> weak_slot = slot;
      // Named, not a temporary inside the co_await: g++ 12 may destroy such temporaries twice.
      consumer_end_handler on_end = [weak, weak_slot](const close_reason&) {
        const auto self = weak.lock();
        const auto s = weak_slot.lock();
        if (self && s) {
          s->ended = true;
          self->event_.notify_all();
        }
      };
      auto [cec, tag] = co_await ch->basic_consume(slot->spec.queue, slot->spec.on_delivery,
                                                   slot->spec.options, std::move(on_end));
      ec = cec;
    }
    if (ec) {
      const auto why = ch ? ch->reason().to_string() : ec.message();
      spdlog::warn("amqp: consumer start failed queue={} reason=\"{}\"", slot->spec.queue, why);
      if (ch && ch->is_open()) {
        co_await ch->close();
      }
      continue;
    }
    if (slot->started_once) {
      ++stats_.consumer_restarts;
    }
    slot->started_once = true;
    slot->live = std::move(ch);
  }
}

asio::awaitable<void> client::serve(const std::shared_ptr<connection>& conn) {
  while (!stopping_ && conn->is_open()) {
    if (publisher_ && !publisher_->attached()) {
      co_await attach_publisher(conn);
    }
    co_await start_consumers(conn);
    if (stopping_ || !conn->is_open()) {
      break;
    }
    co_await event_.wait_until(clock::now() + options_.resource_retry_interval);
  }
}

}  // namespace sluice::amqp
