#include "sluice/services/service_follower.hpp"

#include <set>
#include <string>

#include "sluice/services/layer_sync.hpp"
#include "sluice/services/service_store.hpp"

#include <spdlog/spdlog.h>

namespace sluice::services {
namespace asio = boost::asio;

namespace {

constexpr std::string_view channel = "sluice_services";

}  // namespace

service_follower::service_follower(asio::any_io_executor executor, service_registry& registry,
                                   service_defaults defaults, follower_options options,
                                   metrics::registry& metrics)
    : executor_(executor),
      registry_(registry),
      defaults_(std::move(defaults)),
      options_(std::move(options)),
      modes_(options_.backoff_min, options_.backoff_max),
      connected_(metrics
                     .add_gauge("sluice_services_follower_connected",
                                "1 while the services follower's LISTEN connection is up and "
                                "the table was read since it opened.")
                     .get()),
      reloads_full_(metrics
                        .add_counter("sluice_services_follower_reloads_total",
                                     "Reloads of sluice_services by the follower.", {"kind"})
                        .with({"full"})),
      reloads_one_(metrics
                       .add_counter("sluice_services_follower_reloads_total",
                                    "Reloads of sluice_services by the follower.", {"kind"})
                       .with({"one"})),
      failures_(metrics
                    .add_counter("sluice_services_follower_failures_total",
                                 "Connects, LISTENs and reads of the services follower that "
                                 "failed (each is followed by a reconnect).")
                    .get()) {}

service_follower::~service_follower() {
  if (conn_)
    conn_->close();
}

void service_follower::change(follower_event e) {
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
                "services: follower {} -> {} on {} retry_in_ms={}", to_string(c->from),
                to_string(c->to), to_string(e), modes_.pause().count());
  } else {
    spdlog::debug("services: follower {} -> {} on {}", to_string(c->from), to_string(c->to),
                  to_string(e));
  }
}

void service_follower::stop() {
  stopping_ = true;
  change(follower_event::stop);
  // Ends a wait for a notification or a statement at once; the loop sees stopped.
  if (conn_)
    conn_->close();
  wake_.notify_all();
}

void service_follower::poke() {
  wake_.notify_all();
}

asio::awaitable<void> service_follower::wait_stopped() {
  while (running_)
    co_await wake_.wait_until(async_event::clock::time_point::max());
}

asio::awaitable<void> service_follower::connect() {
  conn_ = std::make_unique<store::pg_connection>(executor_);
  const auto deadline = store::clock::now() + options_.connection.connect_timeout;
  if (auto ec = co_await conn_->connect(options_.connection, deadline)) {
    spdlog::debug("services: follower connect failed error=\"{}\"", conn_->error_message());
    change(follower_event::failed);
    co_return;
  }
  const auto r = co_await conn_->execute("LISTEN " + std::string(channel),
                                         store::clock::now() + options_.statement_timeout);
  if (r.ec) {
    spdlog::warn("services: LISTEN failed error=\"{}\"",
                 r.message.empty() ? r.ec.message() : r.message);
    change(follower_event::failed);
    co_return;
  }
  fresh_connection_ = true;
  change(follower_event::connected);
}

asio::awaitable<void> service_follower::full_reload() {
  // Notifications that arrived before this read are covered by it; any that arrive while it
  // runs are handled after it, one by one (re-reading a service twice is harmless).
  auto all = co_await service_store::load_all(*conn_, defaults_,
                                              store::clock::now() + options_.statement_timeout);
  if (all.status) {
    // 42P01 undefined_table: the push service has not migrated the schema yet (start-up).
    if (all.status.sqlstate == "42P01") {
      spdlog::info("services: sluice_services does not exist yet, waiting for the migrations");
    } else if (!stopping_) {
      spdlog::warn("services: cannot read sluice_services error=\"{}\"", all.status.message);
    }
    change(follower_event::failed);
    co_return;
  }
  const std::size_t count = all.services.size();
  const std::size_t changed = sync_layer(registry_, service_source::api, std::move(all.services));
  ++full_reloads_;
  reloads_full_.inc();
  next_full_reload_ = store::clock::now() + options_.full_reload_interval;
  change(follower_event::loaded);
  spdlog::log(fresh_connection_ ? spdlog::level::info : spdlog::level::debug,
              "services: {} stored services loaded ({} changed), following changes", count,
              changed);
  fresh_connection_ = false;
}

asio::awaitable<void> service_follower::follow() {
  auto notes = conn_->take_notifications();
  if (notes.empty()) {
    const auto ec = co_await conn_->wait_notification(next_full_reload_);
    if (stopping_)
      co_return;
    if (ec == store::errc::timeout) {
      change(follower_event::reload_due);
      co_return;
    }
    if (ec) {
      spdlog::warn("services: LISTEN connection lost error=\"{}\"", conn_->error_message());
      change(follower_event::failed);
      co_return;
    }
    notes = conn_->take_notifications();
  }
  std::set<std::string> names;
  for (auto& n : notes) {
    if (n.channel == channel)
      names.insert(std::move(n.payload));
  }
  for (const auto& name : names) {
    auto one = co_await service_store::load(*conn_, name, defaults_,
                                            store::clock::now() + options_.statement_timeout);
    if (one.status) {
      if (!stopping_)
        spdlog::warn("services: cannot read service {} error=\"{}\"", name, one.status.message);
      change(follower_event::failed);
      co_return;
    }
    reloads_one_.inc();
    if (one.found) {
      // Also the echo of this instance's own write, already applied: nothing to tell anyone.
      put_if_changed(registry_, std::move(*one.found));
    } else {
      registry_.remove(service_source::api, name);
    }
    spdlog::debug("services: {} {} by notification", name, one.found ? "reloaded" : "removed");
  }
}

asio::awaitable<void> service_follower::run() {
  running_ = true;
  while (!stopping_) {
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
  }
  if (conn_)
    conn_->close();
  running_ = false;
  wake_.notify_all();
}

}  // namespace sluice::services
