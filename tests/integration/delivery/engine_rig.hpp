#pragma once

// The engine amqptests' rig: an HTTP target on the test's loop and everything one test needs
// (PostgreSQL pool, stores, registry, amqp client, delivery service, an ingress channel).
// Each test executable includes it once.
#include "sluice/delivery/delivery_service.hpp"
#include "sluice/delivery/retry_scheduler.hpp"
#include "sluice/delivery/retry_store.hpp"
#include "sluice/delivery/subscription_registry.hpp"
#include "sluice/delivery/subscription_store.hpp"
#include "sluice/delivery/webhook_signature.hpp"
#include "sluice/http/client.hpp"
#include "sluice/http/router.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/relay/message_format.hpp"
#include "sluice/relay/queue_modes.hpp"
#include "sluice/store/migrations.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "independent_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/tcp_proxy.hpp"
#include "test_support.hpp"

namespace sluice::delivery::engine_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using amqp::test::sleep_for;

inline asio::awaitable<bool> eventually(std::function<bool()> condition,
                                        std::chrono::milliseconds limit) {
  const auto until = clock::now() + limit;
  while (!condition()) {
    if (clock::now() >= until)
      co_return false;
    co_await sleep_for(10ms);
  }
  co_return true;
}

inline std::optional<std::string> header(const http::request& r, std::string_view name) {
  if (const auto v = r.header(name))
    return std::string(*v);
  return std::nullopt;
}

// An HTTP target on the test's loop. `respond` gets each request and its index (0-based);
// with hang set every request waits until shut().
class test_target {
 public:
  using responder = std::function<http::response(const http::request&, std::size_t)>;

  test_target(asio::io_context& io, responder respond) : respond_(std::move(respond)) {
    const http::handler h = [this](http::request& req) -> asio::awaitable<http::response> {
      ++running_;
      const std::size_t index = seen.size();
      seen.push_back(req);
      seen_at.push_back(clock::now());
      while (hang && !released_)
        co_await release_.wait_until(clock::time_point::max());
      if (delay > std::chrono::milliseconds::zero()) {
        asio::steady_timer timer(co_await asio::this_coro::executor, delay);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      http::response out = respond_ ? respond_(req, index) : http::response::text(200, "", "");
      --running_;
      idle_.notify_all();
      co_return out;
    };
    for (const char* m : {"POST", "PUT"})
      routes_.add(m, "/{rest*}", "any", h);
    http::server_options o;
    o.name = "target";
    server_ = std::make_unique<http::server>(io.get_executor(), o, routes_, metrics_);
    port = server_->listen("127.0.0.1", 0);
    server_->start();
  }

  // Releases what hangs and waits for the last handler, so none resumes into a gone target.
  asio::awaitable<void> shut() {
    released_ = true;
    release_.notify_all();
    while (running_ > 0)
      co_await idle_.wait_until(clock::time_point::max());
    co_await server_->shutdown(0ms);
  }

  // Lets what hangs go on (and what comes later through): hang ends now.
  void unhang() {
    hang = false;
    release_.notify_all();
  }

  std::uint16_t port = 0;
  std::vector<http::request> seen;
  std::vector<clock::time_point> seen_at;
  bool hang = false;
  std::chrono::milliseconds delay{0};  // each answer takes this long

 private:
  responder respond_;
  metrics::registry metrics_;
  http::router routes_;
  std::unique_ptr<http::server> server_;
  int running_ = 0;
  bool released_ = false;
  async_event release_;
  async_event idle_;
};

// Everything one test needs on its loop, with a database of its own.
struct rig {
  rig(asio::io_context& io, const std::string& db_url, delivery_service_options options = {})
      : io_(io) {
    store::pool_options po;
    po.connection.conninfo = db_url;
    po.connection.connect_timeout = 2s;
    po.connection.statement_timeout = 5s;
    po.max_connections = 3;
    po.reconnect_backoff_max = 300ms;
    pool = std::make_unique<store::pg_pool>(io.get_executor(), po);
    modes = std::make_unique<relay::queue_modes>(*pool);
    retries = std::make_unique<retry_store>(*pool);
    dead_letters = std::make_unique<dead_letter_store>(*pool);
    subscriptions = std::make_unique<subscription_store>(*pool);
    amqp::client_options co;
    co.connection = amqp::test::options_for(amqp::test::broker_url());
    client = amqp::client::create(io.get_executor(), co);
    upstream = std::make_unique<http::client>(io.get_executor(), http::client_options{});
    delivery_stores ds;
    ds.retries = retries.get();
    ds.dead_letters = dead_letters.get();
    ds.subscriptions = subscriptions.get();
    ds.on_parked = [this](std::chrono::system_clock::time_point due) {
      ++parked;
      if (scheduler)
        scheduler->expect(due);
    };
    options.delivery.stop_grace = 300ms;
    options.delivery.store_backoff_initial = 50ms;
    options.delivery.store_backoff_max = 400ms;
    options.delivery.store_timeout = 1s;
    options.mode_check_interval = 200ms;
    service = delivery_service::create(io.get_executor(), client, registry, *modes, *upstream,
                                       metrics, std::move(ds), options);
  }

  // The retry path's other half, as the daemon runs it: due rows are published again.
  void with_scheduler() {
    retry_scheduler_options o;
    o.poll = 200ms;
    scheduler_store = std::make_unique<retry_store>(*pool);
    scheduler = retry_scheduler::create(io_.get_executor(), o, *scheduler_store, client, *modes,
                                        metrics, ordered_by(registry));
  }

  asio::awaitable<void> start() {
    const auto m = co_await store::apply_migrations(*pool, clock::now() + 10s);
    if (m.ec)
      throw std::runtime_error("migrations: " + m.message);
    if (co_await modes->refresh(clock::now() + 5s))
      throw std::runtime_error("queue modes");
    registry.replace_all({});
    client->start();
    if (scheduler)
      scheduler->start();
    service->start();
    ingress = amqp::connection::create(io_.get_executor(),
                                       amqp::test::options_for(amqp::test::broker_url()));
    if (co_await ingress->open())
      throw std::runtime_error("ingress connect");
    auto [ec, ch] = co_await ingress->open_channel();
    if (ec)
      throw std::runtime_error("ingress channel");
    ingress_ch = ch;
  }

  subscription sub(const std::string& queue, const test_target& t) const {
    subscription s;
    s.queue = queue;
    s.name = "hook";
    s.url = "http://127.0.0.1:" + std::to_string(t.port) + "/hook";
    s.address.host = "127.0.0.1";
    s.address.port = t.port;
    s.address.target = "/hook";
    s.timeout = 2s;
    s.concurrency = 4;
    s.retry.max_attempts = 3;
    s.retry.initial_backoff = 20ms;
    s.retry.max_backoff = 50ms;
    return s;
  }

  // Stored (the retry scheduler claims rows of stored subscriptions only) and in the registry,
  // as the subscription follower would put it there.
  asio::awaitable<void> put(const subscription& s) {
    const auto r = co_await subscriptions->put(s, false, clock::now() + 5s);
    if (r.status)
      throw std::runtime_error("subscription put: " + r.status.message);
    registry.put(s);
  }

  bool consuming(const std::string& queue) const {
    for (const auto& c : service->status()) {
      if (c.queue == queue)
        return c.consuming;
    }
    return false;
  }

  // A message as the relay publishes it, with `extra` headers (a retry's).
  uuid publish(const std::string& queue, const std::string& payload,
               const std::string& partition = "p1", std::optional<std::string> trace = std::nullopt,
               amqp::field_table extra = {}, std::optional<uuid> id = std::nullopt,
               relay::queue_mode mode = relay::queue_mode::queue) {
    message m;
    m.id = id ? *id : ids.next();
    m.created_ms = m.id.unix_ms();
    m.queue = queue;
    m.partition = partition;
    m.trace_id = std::move(trace);
    m.payload = payload;
    auto out = relay::to_outgoing(m, mode);
    EXPECT_TRUE(out);
    for (const auto& e : extra)
      out->properties.headers->set(e.key, e.value);
    EXPECT_FALSE(ingress_ch->basic_publish(out->exchange, out->routing_key, out->properties,
                                           out->body, false));
    return m.id;
  }

  asio::awaitable<void> shut(const std::vector<test_target*>& targets) {
    co_await service->stop();
    if (scheduler)
      co_await scheduler->stop();
    upstream->close();
    co_await client->stop();
    co_await ingress->close();
    for (auto* t : targets)
      co_await t->shut();
    pool->shutdown();
  }

  std::string queue_name(const char* prefix) {
    auto q = amqp::test::unique_name(prefix);
    queues.push_back(q);
    return q;
  }

  ~rig() {
    amqp::test::independent_client admin(amqp::test::broker_url());
    for (const auto& q : queues) {
      admin.delete_queue(relay::amqp_name(q));
      admin.delete_queue(consume_queue(q, "hook", true));
      admin.delete_exchange(relay::amqp_name(q));
    }
  }

  double metric(const std::string& series) const {
    const std::string text = metrics.expose();
    const auto at = text.find(series + " ");
    if (at == std::string::npos)
      return -1;
    return std::stod(text.substr(at + series.size() + 1));
  }

  asio::io_context& io_;
  std::unique_ptr<store::pg_pool> pool;
  std::unique_ptr<relay::queue_modes> modes;
  std::unique_ptr<retry_store> retries;
  std::unique_ptr<dead_letter_store> dead_letters;
  std::unique_ptr<subscription_store> subscriptions;
  subscription_registry registry;
  metrics::registry metrics;
  std::shared_ptr<amqp::client> client;
  std::unique_ptr<http::client> upstream;
  std::shared_ptr<delivery_service> service;
  std::unique_ptr<retry_store> scheduler_store;
  std::shared_ptr<retry_scheduler> scheduler;
  std::shared_ptr<amqp::connection> ingress;
  std::shared_ptr<amqp::channel> ingress_ch;
  uuid_v7_generator ids;
  std::vector<std::string> queues;
  int parked = 0;
};

inline std::uint32_t messages_in(const std::string& queue) {
  amqp::test::independent_client admin(amqp::test::broker_url());
  return admin.message_count(relay::amqp_name(queue));
}

}  // namespace sluice::delivery::engine_test
