#include "sluice/store/listen_follower.hpp"

#include <set>

#include <spdlog/spdlog.h>

namespace sluice::store {
namespace asio = boost::asio;

listen_follower::listen_follower(asio::any_io_executor executor, listen_target target,
                                 listen_options options, metrics::registry& metrics)
    : executor_(executor),
      target_(std::move(target)),
      options_(std::move(options)),
      modes_(options_.backoff_min, options_.backoff_max),
      connected_(metrics
                     .add_gauge(target_.metric_prefix + "_connected",
                                "1 while the " + target_.what +
                                    " follower's LISTEN connection is up and the table was read "
                                    "since it opened.")
                     .get()),
      reloads_full_(metrics
                        .add_counter(target_.metric_prefix + "_reloads_total",
                                     "Reloads of " + target_.what + " by the follower.", {"kind"})
                        .with({"full"})),
      reloads_one_(metrics
                       .add_counter(target_.metric_prefix + "_reloads_total",
                                    "Reloads of " + target_.what + " by the follower.", {"kind"})
                       .with({"one"})),
      failures_(metrics
                    .add_counter(target_.metric_prefix + "_failures_total",
                                 "Connects, LISTENs and reads of the " + target_.what +
                                     " follower that failed (each is followed by a reconnect).")
                    .get()) {}

listen_follower::~listen_follower() {
  if (conn_)
    conn_->close();
}

clock::time_point listen_follower::statement_deadline() const {
  return clock::now() + options_.statement_timeout;
}

void listen_follower::change(follower_event e) {
  const auto c = modes_.on(e);
  if (!c)
    return;
  if (c->to == follower_mode::following) {
    connected_.set(1);
  } else if (c->to != follower_mode::loading) {
    connected_.set(0);
  }
  if (c->to == follower_mode::backing_off) {
    failures_.inc();
    spdlog::log(c->from == follower_mode::following ? spdlog::level::warn : spdlog::level::info,
                "{}: follower {} -> {} on {} retry_in_ms={}", target_.log_name, to_string(c->from),
                to_string(c->to), to_string(e), modes_.pause().count());
  } else {
    spdlog::debug("{}: follower {} -> {} on {}", target_.log_name, to_string(c->from),
                  to_string(c->to), to_string(e));
  }
}

void listen_follower::stop() {
  stopping_ = true;
  change(follower_event::stop);
  // Ends a wait for a notification or a statement at once; the loop sees stopped.
  if (conn_)
    conn_->close();
  wake_.notify_all();
}

void listen_follower::poke() {
  wake_.notify_all();
}

asio::awaitable<void> listen_follower::wait_stopped() {
  while (running_)
    co_await wake_.wait_until(async_event::clock::time_point::max());
}

asio::awaitable<void> listen_follower::connect() {
  conn_ = std::make_unique<pg_connection>(executor_);
  const auto deadline = clock::now() + options_.connection.connect_timeout;
  if (auto ec = co_await conn_->connect(options_.connection, deadline)) {
    spdlog::debug("{}: follower connect failed error=\"{}\"", target_.log_name,
                  conn_->error_message());
    change(follower_event::failed);
    co_return;
  }
  const auto r = co_await conn_->execute("LISTEN " + target_.channel, statement_deadline());
  if (r.ec) {
    spdlog::warn("{}: LISTEN failed error=\"{}\"", target_.log_name,
                 r.message.empty() ? r.ec.message() : r.message);
    change(follower_event::failed);
    co_return;
  }
  fresh_connection_ = true;
  change(follower_event::connected);
}

asio::awaitable<void> listen_follower::full_reload() {
  // Notifications that arrived before this read are covered by it; any that arrive while it
  // runs are handled after it, one by one (re-reading a row twice is harmless).
  const bool ok = co_await target_.full_reload(*conn_, statement_deadline(), fresh_connection_);
  if (!ok) {
    change(follower_event::failed);
    co_return;
  }
  ++full_reloads_;
  reloads_full_.inc();
  next_full_reload_ = clock::now() + options_.full_reload_interval;
  change(follower_event::loaded);
  fresh_connection_ = false;
}

asio::awaitable<void> listen_follower::follow() {
  auto notes = conn_->take_notifications();
  if (notes.empty()) {
    const auto ec = co_await conn_->wait_notification(next_full_reload_);
    if (stopping_)
      co_return;
    if (ec == errc::timeout) {
      change(follower_event::reload_due);
      co_return;
    }
    if (ec) {
      spdlog::warn("{}: LISTEN connection lost error=\"{}\"", target_.log_name,
                   conn_->error_message());
      change(follower_event::failed);
      co_return;
    }
    notes = conn_->take_notifications();
  }
  // A burst of writes to one row is one re-read.
  std::set<std::string> payloads;
  for (auto& n : notes) {
    if (n.channel == target_.channel)
      payloads.insert(std::move(n.payload));
  }
  for (const auto& payload : payloads) {
    const bool ok = co_await target_.reload_one(*conn_, payload, statement_deadline());
    if (!ok) {
      change(follower_event::failed);
      co_return;
    }
    reloads_one_.inc();
  }
}

asio::awaitable<void> listen_follower::run() {
  running_ = true;
  while (!stopping_) {
    // A read callback that throws (a listener of what it applies, an allocation) is a failed
    // read: reconnect and reload. Escaping, it would end the following for good and leave
    // running_ set, so that wait_stopped() never returned.
    try {
      switch (modes_.mode()) {
        case follower_mode::connecting:
          co_await connect();
          break;
        case follower_mode::loading:
          co_await full_reload();
          break;
        case follower_mode::following:
          co_await follow();
          break;
        case follower_mode::backing_off: {
          if (conn_)
            conn_->close();
          co_await wake_.wait_until(async_event::clock::now() + modes_.pause());
          change(follower_event::pause_over);
          break;
        }
        case follower_mode::stopped:
          stopping_ = true;
          break;
      }
    } catch (const std::exception& e) {
      spdlog::error("{}: follower read failed error=\"{}\"", target_.log_name, e.what());
      change(follower_event::failed);
    }
  }
  if (conn_)
    conn_->close();
  running_ = false;
  wake_.notify_all();
}

}  // namespace sluice::store
