// The delivery engine in process against real RabbitMQ and PostgreSQL and HTTP targets on the
// same loop: messages published in the relay's AMQP form reach the target with sluice's headers,
// a 500 is parked in sluice_delivery_retries and delivered on its second attempt by the retry
// scheduler, a 400 is a dead letter at once, a 410 pauses the subscription, a hanging target
// holds up only its own queue, 503s shrink the adaptive concurrency and successes grow it back,
// batches (partial failure, malformed answers), an open circuit defers, partition ordering,
// PostgreSQL away while parking, queue mode changes and removal, the rate limit.
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

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "independent_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/tcp_proxy.hpp"
#include "test_support.hpp"

namespace sluice::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using amqp::test::sleep_for;

asio::awaitable<bool> eventually(std::function<bool()> condition, std::chrono::milliseconds limit) {
  const auto until = clock::now() + limit;
  while (!condition()) {
    if (clock::now() >= until)
      co_return false;
    co_await sleep_for(10ms);
  }
  co_return true;
}

std::optional<std::string> header(const http::request& r, std::string_view name) {
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

  std::uint16_t port = 0;
  std::vector<http::request> seen;
  std::vector<clock::time_point> seen_at;
  bool hang = false;

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

std::uint32_t messages_in(const std::string& queue) {
  amqp::test::independent_client admin(amqp::test::broker_url());
  return admin.message_count(relay::amqp_name(queue));
}

TEST(delivery_engine, a_delivery_arrives_with_the_right_headers_and_body) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target t(io, {});
    co_await r.start();
    const auto queue = r.queue_name("eng");
    auto s = r.sub(queue, t);
    s.headers = {{"Authorization", "Bearer x"}};
    s.secrets = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    const auto id = r.publish(queue, R"({"n": 1})", "customer-9",
                              std::string("4bf92f3577b34da6a3ce929d0e0e4736"));
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 1; }, 10s));
    if (t.seen.size() == 1) {
      const auto& req = t.seen[0];
      EXPECT_EQ(req.method, "POST");
      EXPECT_EQ(req.target, "/hook");
      EXPECT_EQ(req.body, R"({"n": 1})");
      EXPECT_EQ(header(req, "Content-Type"), "application/json");
      EXPECT_EQ(header(req, "Idempotency-Key"), id.to_string());
      EXPECT_EQ(header(req, "X-Sluice-Queue"), queue);
      EXPECT_EQ(header(req, "X-Sluice-Partition"), "customer-9");
      EXPECT_EQ(header(req, "X-Sluice-Attempt"), "1");
      EXPECT_EQ(header(req, "Authorization"), "Bearer x");
      const auto tp = header(req, "traceparent");
      EXPECT_TRUE(tp && tp->starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") &&
                  tp->ends_with("-01"));
      EXPECT_EQ(header(req, "webhook-id"), id.to_string());
      const auto ts = header(req, "webhook-timestamp");
      CO_ASSERT_TRUE(ts);
      const auto key = decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
      EXPECT_EQ(header(req, "webhook-signature"),
                webhook_signature({*key}, id.to_string(), *ts, R"({"n": 1})"));
    }
    EXPECT_TRUE(co_await eventually(
        [&] {
          return r.metric("sluice_delivery_attempts_total{queue=\"" + queue +
                          "\",outcome=\"delivered\"}") == 1;
        },
        5s));
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

TEST(delivery_engine, a_500_is_parked_and_delivered_on_the_second_attempt) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    r.with_scheduler();
    test_target t(io, [](const http::request&, std::size_t i) {
      return http::response::text(i == 0 ? 500 : 200, "text/plain", i == 0 ? "boom" : "ok");
    });
    co_await r.start();
    const auto queue = r.queue_name("eng");
    auto s = r.sub(queue, t);
    s.retry.initial_backoff = 300ms;
    s.retry.max_backoff = 300ms;
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    const auto id = r.publish(queue, R"({"n": 2})");
    test::pg_session pg(db.url());
    const std::string row_sql =
        "SELECT attempt, partition, encode(payload, 'escape'), first_attempt_at IS NOT NULL "
        "FROM sluice_delivery_retries WHERE message_id = '" +
        id.to_string() + "'";
    // Parked (before the ack) with the next attempt's number; a row may already be gone again
    // when the jittered delay was short, so the second request is the proof either way.
    std::vector<test::pg_session::row> rows;
    co_await eventually(
        [&] {
          rows = pg.query(row_sql);
          return !rows.empty() || t.seen.size() >= 2;
        },
        10s);
    if (!rows.empty()) {
      EXPECT_EQ(rows[0][0], "2");
      EXPECT_EQ(rows[0][1], "p1");
      EXPECT_EQ(rows[0][2], R"({"n": 2})");
      EXPECT_EQ(rows[0][3], "t");
    }
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 2; }, 10s));
    if (t.seen.size() == 2) {
      EXPECT_EQ(header(t.seen[0], "X-Sluice-Attempt"), "1");
      EXPECT_EQ(header(t.seen[1], "X-Sluice-Attempt"), "2");
      EXPECT_EQ(header(t.seen[1], "Idempotency-Key"), id.to_string());
      EXPECT_EQ(t.seen[1].body, R"({"n": 2})");
    }
    EXPECT_EQ(r.parked, 1);
    EXPECT_TRUE(co_await eventually(
        [&] {
          return r.metric("sluice_delivery_attempts_total{queue=\"" + queue +
                          "\",outcome=\"delivered\"}") == 1 &&
                 r.metric("sluice_delivery_attempts_total{queue=\"" + queue +
                          "\",outcome=\"retry\"}") == 1;
        },
        5s));
    EXPECT_TRUE(co_await eventually(
        [&] { return pg.scalar("SELECT count(*) FROM sluice_delivery_retries") == "0"; }, 5s));
    EXPECT_TRUE(co_await eventually([&] { return messages_in(queue) == 0; }, 5s));
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_dead_letters"), "0");
    co_await sleep_for(300ms);
    EXPECT_EQ(t.seen.size(), 2u);
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

TEST(delivery_engine, a_400_is_a_dead_letter_at_once) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target t(io, [](const http::request&, std::size_t) {
      return http::response::text(400, "text/plain", std::string(3000, 'e'));
    });
    co_await r.start();
    const auto queue = r.queue_name("eng");
    co_await r.put(r.sub(queue, t));
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    const auto id = r.publish(queue, R"({"n": 3})");
    test::pg_session pg(db.url());
    const std::string sql =
        "SELECT reason, last_status, attempts, length(response_excerpt), subscription, "
        "encode(payload, 'escape') FROM sluice_dead_letters WHERE id = '" +
        id.to_string() + "'";
    EXPECT_TRUE(co_await eventually([&] { return !pg.query(sql).empty(); }, 10s));
    const auto rows = pg.query(sql);
    CO_ASSERT_TRUE(rows.size() == 1);
    EXPECT_EQ(rows[0][0], "rejected");
    EXPECT_EQ(rows[0][1], "400");
    EXPECT_EQ(rows[0][2], "1");
    EXPECT_EQ(rows[0][3], "1024");
    EXPECT_EQ(rows[0][4], "hook");
    EXPECT_EQ(rows[0][5], R"({"n": 3})");
    EXPECT_EQ(t.seen.size(), 1u);
    EXPECT_TRUE(co_await eventually([&] { return messages_in(queue) == 0; }, 5s));
    EXPECT_TRUE(co_await eventually(
        [&] {
          return r.metric("sluice_dead_letters_total{queue=\"" + queue +
                          "\",reason=\"rejected\"}") == 1;
        },
        5s));
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_delivery_retries"), "0");
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

TEST(delivery_engine, a_410_dead_letters_and_pauses_the_subscription) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target t(io, [](const http::request&, std::size_t) {
      return http::response::text(410, "text/plain", "gone");
    });
    co_await r.start();
    const auto queue = r.queue_name("eng");
    const auto s = r.sub(queue, t);
    test::pg_session pg(db.url());
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    const auto first = r.publish(queue, R"({"n": 4})");
    EXPECT_TRUE(co_await eventually(
        [&] {
          return pg.scalar(
                     "SELECT count(*) FROM sluice_subscriptions WHERE paused_at IS NOT "
                     "NULL") == "1";
        },
        10s));
    EXPECT_EQ(pg.scalar("SELECT paused_reason FROM sluice_subscriptions"), "gone: 410");
    EXPECT_EQ(
        pg.scalar("SELECT reason FROM sluice_dead_letters WHERE id = '" + first.to_string() + "'"),
        "gone");
    // It stopped consuming at once: a later message stays in RabbitMQ.
    EXPECT_TRUE(co_await eventually([&] { return !r.consuming(queue); }, 5s));
    r.publish(queue, R"({"n": 5})");
    co_await sleep_for(300ms);
    EXPECT_EQ(t.seen.size(), 1u);
    EXPECT_EQ(messages_in(queue), 1u);
    // The follower would put the paused row into the registry: then the consumer is gone.
    auto paused = s;
    paused.paused = true;
    paused.paused_reason = "gone: 410";
    r.registry.put(paused);
    EXPECT_TRUE(r.service->status().empty());
    EXPECT_EQ(r.service->status_of(queue, "hook")["consuming"], false);
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

TEST(delivery_engine, a_hanging_target_does_not_stop_another_queue) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target slow(io, {});
    slow.hang = true;
    test_target fast(io, {});
    co_await r.start();
    const auto qa = r.queue_name("enga");
    const auto qb = r.queue_name("engb");
    auto sa = r.sub(qa, slow);
    sa.timeout = 20s;
    co_await r.put(sa);
    co_await r.put(r.sub(qb, fast));
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(qa) && r.consuming(qb); }, 10s));
    for (int i = 0; i < 10; ++i)
      r.publish(qa, R"({"a": true})");
    EXPECT_TRUE(co_await eventually([&] { return slow.seen.size() == 4; }, 10s));
    for (int i = 0; i < 20; ++i)
      r.publish(qb, R"({"b": true})");
    EXPECT_TRUE(co_await eventually([&] { return fast.seen.size() == 20; }, 10s));
    EXPECT_TRUE(co_await eventually([&] { return messages_in(qb) == 0; }, 5s));
    // A's deliveries are still held, bounded by its concurrency.
    EXPECT_EQ(slow.seen.size(), 4u);
    EXPECT_EQ(r.service->status_of(qa, "hook")["inFlight"], 4);
    EXPECT_EQ(r.metric("sluice_delivery_in_flight{queue=\"" + qa + "\"}"), 4);
    // A's oldest held message keeps ageing; B's lag is what its last one had on arrival.
    const double lag_a = r.metric("sluice_delivery_lag_seconds{queue=\"" + qa + "\"}");
    co_await sleep_for(200ms);
    EXPECT_GE(r.metric("sluice_delivery_lag_seconds{queue=\"" + qa + "\"}"), lag_a + 0.15);
    const double lag_b = r.metric("sluice_delivery_lag_seconds{queue=\"" + qb + "\"}");
    EXPECT_GE(lag_b, 0);
    EXPECT_LT(lag_b, 5);
    co_await sleep_for(200ms);
    EXPECT_EQ(r.metric("sluice_delivery_lag_seconds{queue=\"" + qb + "\"}"), lag_b);
    const std::vector<test_target*> targets{&slow, &fast};
    co_await r.shut(targets);
    // Stopped with A's four still held: after the grace they were left unacked, so RabbitMQ
    // has all ten again.
    EXPECT_TRUE(co_await eventually([&] { return messages_in(qa) == 10; }, 5s));
  });
}

TEST(delivery_engine, 503s_shrink_the_concurrency_limit_and_successes_grow_it_back) {
  test::scoped_database db;
  amqp::test::run(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        delivery_service_options o;
        o.breaker.failure_threshold = 1'000'000;  // the breaker is not under test here
        rig r(io, db.url(), o);
        bool overloaded = true;
        test_target t(io, [&overloaded](const http::request&, std::size_t) {
          return http::response::text(overloaded ? 503 : 200, "text/plain", "");
        });
        co_await r.start();
        const auto queue = r.queue_name("eng");
        auto s = r.sub(queue, t);
        s.concurrency = 8;
        s.retry.max_attempts = 100;
        co_await r.put(s);
        EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
        const std::string gauge = "sluice_delivery_concurrency_limit{queue=\"" + queue + "\"}";
        EXPECT_EQ(r.metric(gauge), 8);
        for (int i = 0; i < 10; ++i)
          r.publish(queue, R"({"c": 1})");
        EXPECT_TRUE(co_await eventually([&] { return r.metric(gauge) < 8; }, 10s));
        const double low = r.metric(gauge);
        EXPECT_LE(low, 4);
        // Halved at most once per cooldown: more 503s a while later halve it again.
        co_await sleep_for(1100ms);
        for (int i = 0; i < 10; ++i)
          r.publish(queue, R"({"c": 2})");
        EXPECT_TRUE(co_await eventually([&] { return r.metric(gauge) < low; }, 10s));
        overloaded = false;
        for (int i = 0; i < 100; ++i)
          r.publish(queue, R"({"c": 3})");
        EXPECT_TRUE(co_await eventually([&] { return r.metric(gauge) == 8; }, 20s));
        EXPECT_TRUE(co_await eventually([&] { return messages_in(queue) == 0; }, 10s));
        const std::vector<test_target*> targets{&t};
        co_await r.shut(targets);
      },
      std::chrono::seconds(90));
}

// The items of a batch request, by id, and their partitions in order.
std::vector<std::string> batch_ids(const http::request& req) {
  std::vector<std::string> out;
  for (const auto& item : nlohmann::json::parse(req.body))
    out.push_back(item.at("id").get<std::string>());
  return out;
}

subscription batch_sub(const rig& r, const std::string& queue, const test_target& t,
                       std::uint32_t max_items) {
  auto s = r.sub(queue, t);
  batch_spec b;
  b.max_items = max_items;
  b.max_wait = 300ms;
  b.url = "http://127.0.0.1:" + std::to_string(t.port) + "/batch";
  s.batch = b;
  s.batch_address = target_address{"127.0.0.1", t.port, "/batch"};
  return s;
}

TEST(delivery_engine, batch_mode_round_trip_and_partial_failure) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    // Answers by id, in reverse order: the second item 503, the third 400, the rest 200.
    test_target t(io, [](const http::request& req, std::size_t) {
      const auto ids = batch_ids(req);
      nlohmann::json answer = nlohmann::json::array();
      for (std::size_t i = ids.size(); i-- > 0;)
        answer.push_back({{"id", ids[i]}, {"status", i == 1 ? 503 : i == 2 ? 400 : 200}});
      return http::response::json(200, answer.dump());
    });
    co_await r.start();
    const auto queue = r.queue_name("engbatch");
    co_await r.put(batch_sub(r, queue, t, 5));
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    std::vector<uuid> ids;
    for (int i = 0; i < 5; ++i)
      ids.push_back(r.publish(queue, "{\"i\":" + std::to_string(i) + "}"));
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 1; }, 10s));
    CO_ASSERT_TRUE(t.seen.size() == 1);
    const auto& req = t.seen[0];
    EXPECT_EQ(req.target, "/batch");
    EXPECT_EQ(header(req, "X-Sluice-Batch-Size"), "5");
    const auto body = nlohmann::json::parse(req.body);
    CO_ASSERT_TRUE(body.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(body[i]["id"], ids[i].to_string());
      EXPECT_EQ(body[i]["queue"], queue);
      EXPECT_EQ(body[i]["attempt"], 1);
      EXPECT_EQ(body[i]["payload"]["i"], static_cast<int>(i));
    }
    test::pg_session pg(db.url());
    EXPECT_TRUE(co_await eventually([&] { return messages_in(queue) == 0; }, 5s));
    EXPECT_TRUE(co_await eventually(
        [&] {
          return pg.scalar("SELECT count(*) FROM sluice_delivery_retries") == "1" &&
                 pg.scalar("SELECT count(*) FROM sluice_dead_letters") == "1";
        },
        5s));
    EXPECT_EQ(pg.scalar("SELECT message_id FROM sluice_delivery_retries"), ids[1].to_string());
    EXPECT_EQ(
        pg.scalar("SELECT id || ' ' || reason || ' ' || last_status FROM sluice_dead_letters"),
        ids[2].to_string() + " rejected 400");
    EXPECT_EQ(
        r.metric("sluice_delivery_attempts_total{queue=\"" + queue + "\",outcome=\"delivered\"}"),
        3);
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

TEST(delivery_engine, a_malformed_batch_response_retries_every_item) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target t(io, [](const http::request&, std::size_t) {
      return http::response::json(200, "[200]");  // one status for three items
    });
    co_await r.start();
    const auto queue = r.queue_name("engbatch");
    auto s = batch_sub(r, queue, t, 3);
    s.retry.max_attempts = 2;
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    for (int i = 0; i < 3; ++i)
      r.publish(queue, "{}");
    test::pg_session pg(db.url());
    EXPECT_TRUE(co_await eventually(
        [&] {
          return pg.scalar("SELECT count(*) FROM sluice_delivery_retries WHERE attempt = 2") == "3";
        },
        10s));
    // Their last attempt fails the same way: dead letters with the batch's reason. (The
    // scheduler's part, by hand: claim them once all are due, publish, delete.)
    std::vector<parked_message> claimed;
    const auto until = clock::now() + 5s;
    while (claimed.size() < 3 && clock::now() < until) {
      auto [cec, more] = co_await r.retries->claim_due(10, 30s, clock::now() + 5s);
      EXPECT_FALSE(cec);
      claimed.insert(claimed.end(), more.begin(), more.end());
      co_await sleep_for(20ms);
    }
    CO_ASSERT_TRUE(claimed.size() == 3);
    for (const auto& p : claimed) {
      amqp::field_table extra;
      extra.set(attempt_header, static_cast<std::int32_t>(p.attempt));
      r.publish(queue, p.payload, p.partition, std::nullopt, extra, p.message_id);
    }
    EXPECT_FALSE(co_await r.retries->remove(claimed, clock::now() + 5s));
    EXPECT_TRUE(co_await eventually(
        [&] {
          return pg.scalar(
                     "SELECT count(*) FROM sluice_dead_letters WHERE reason = "
                     "'bad_batch_response' AND attempts = 2") == "3";
        },
        10s));
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_delivery_retries"), "0");
    EXPECT_EQ(t.seen.size(), 2u);
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

TEST(delivery_engine, an_open_circuit_defers_without_an_attempt) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    delivery_service_options o;
    o.breaker.failure_threshold = 1;
    o.breaker.open_initial = 60s;  // the next probe is further away than the hold bound
    rig r(io, db.url(), o);
    test_target t(io, [](const http::request&, std::size_t) {
      return http::response::text(503, "text/plain", "");
    });
    co_await r.start();
    const auto queue = r.queue_name("engcb");
    co_await r.put(r.sub(queue, t));
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    const auto first = r.publish(queue, "{}");
    test::pg_session pg(db.url());
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 1; }, 10s));
    EXPECT_TRUE(co_await eventually(
        [&] { return r.service->status_of(queue, "hook")["circuit"] == "open"; }, 5s));
    const auto second = r.publish(queue, "{}");
    const std::string sql =
        "SELECT attempt, due_at > now() + interval '30 seconds' FROM "
        "sluice_delivery_retries WHERE message_id = '" +
        second.to_string() + "'";
    EXPECT_TRUE(co_await eventually([&] { return !pg.query(sql).empty(); }, 10s));
    const auto rows = pg.query(sql);
    CO_ASSERT_TRUE(rows.size() == 1);
    EXPECT_EQ(rows[0][0], "1");  // not an attempt: the number stays
    EXPECT_EQ(rows[0][1], "t");
    EXPECT_EQ(t.seen.size(), 1u);
    EXPECT_EQ(pg.scalar("SELECT attempt FROM sluice_delivery_retries WHERE message_id = '" +
                        first.to_string() + "'"),
              "2");
    EXPECT_EQ(
        r.metric("sluice_delivery_attempts_total{queue=\"" + queue + "\",outcome=\"deferred\"}"),
        1);
    EXPECT_EQ(r.metric("sluice_delivery_circuit_state{target=\"127.0.0.1:" +
                       std::to_string(t.port) + "\"}"),
              1);
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

TEST(delivery_engine, partition_ordering_holds_a_failing_partition_only) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    r.with_scheduler();
    // The first request of partition A fails; everything else succeeds.
    bool failed_once = false;
    test_target t(io, [&failed_once](const http::request& req, std::size_t) {
      if (req.header("X-Sluice-Partition") == "A" && !failed_once) {
        failed_once = true;
        return http::response::text(500, "text/plain", "");
      }
      return http::response::text(200, "text/plain", "");
    });
    co_await r.start();
    const auto queue = r.queue_name("engord");
    CO_ASSERT_OK(co_await r.modes->set(queue, relay::queue_mode::broadcast, clock::now() + 5s));
    auto s = r.sub(queue, t);
    s.ordering = ordering::partition;
    s.retry.initial_backoff = 400ms;
    s.retry.max_backoff = 400ms;
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    std::vector<std::string> a_ids;
    for (int i = 0; i < 3; ++i)
      a_ids.push_back(
          r.publish(queue, "{}", "A", std::nullopt, {}, std::nullopt, relay::queue_mode::broadcast)
              .to_string());
    const auto b =
        r.publish(queue, "{}", "B", std::nullopt, {}, std::nullopt, relay::queue_mode::broadcast);
    // B is not held up by A's failure.
    EXPECT_TRUE(co_await eventually(
        [&] {
          return std::any_of(t.seen.begin(), t.seen.end(), [&](const http::request& q) {
            return q.header("Idempotency-Key") == b.to_string();
          });
        },
        5s));
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 5; }, 15s));
    std::vector<std::string> a_order;
    for (const auto& q : t.seen) {
      if (q.header("X-Sluice-Partition") == "A")
        a_order.push_back(std::string(*q.header("Idempotency-Key")) + "#" +
                          std::string(*q.header("X-Sluice-Attempt")));
    }
    const std::vector<std::string> expected = {a_ids[0] + "#1", a_ids[0] + "#2", a_ids[1] + "#1",
                                               a_ids[2] + "#1"};
    EXPECT_EQ(a_order, expected);
    test::pg_session pg(db.url());
    EXPECT_TRUE(co_await eventually(
        [&] { return pg.scalar("SELECT count(*) FROM sluice_delivery_retries") == "0"; }, 5s));
    co_await sleep_for(300ms);
    EXPECT_EQ(t.seen.size(), 5u);
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

bool queue_exists(const std::string& name) {
  try {
    amqp::test::independent_client admin(amqp::test::broker_url());
    admin.message_count(name);
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

TEST(delivery_engine, postgresql_down_returns_deliveries_to_rabbitmq_and_loses_none) {
  test::scoped_database db;
  test::tcp_proxy proxy("127.0.0.1", test::url_port(db.url()));
  amqp::test::run(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        rig r(io, test::url_with_port(db.url(), proxy.port()));
        // The last 500 may be parked once PostgreSQL is back: the scheduler brings it back.
        r.with_scheduler();
        bool db_down = false;
        // 500 while PostgreSQL is away (a retry that cannot be parked), 200 once it is back.
        test_target t(io, [&db_down](const http::request&, std::size_t) {
          return http::response::text(db_down ? 500 : 200, "text/plain", "");
        });
        co_await r.start();
        const auto queue = r.queue_name("engpg");
        co_await r.put(r.sub(queue, t));
        EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
        db_down = true;
        proxy.cut();
        const auto id = r.publish(queue, "{}");
        const std::string requeued =
            "sluice_delivery_requeued_total{queue=\"" + queue + "\",reason=\"store_unavailable\"}";
        EXPECT_TRUE(co_await eventually([&] { return r.metric(requeued) >= 3; }, 15s));
        // Never spun on: the pause doubles (50 ms up to 400 ms here) between returns.
        const auto before = t.seen.size();
        co_await sleep_for(1s);
        EXPECT_LE(t.seen.size() - before, 5u);
        for (const auto& q : t.seen)
          EXPECT_EQ(q.header("Idempotency-Key"), id.to_string());
        proxy.restore();
        db_down = false;
        EXPECT_TRUE(co_await eventually(
            [&] {
              return r.metric("sluice_delivery_attempts_total{queue=\"" + queue +
                              "\",outcome=\"delivered\"}") == 1;
            },
            15s));
        EXPECT_TRUE(co_await eventually([&] { return messages_in(queue) == 0; }, 5s));
        test::pg_session pg(db.url());
        EXPECT_TRUE(co_await eventually(
            [&] { return pg.scalar("SELECT count(*) FROM sluice_delivery_retries") == "0"; }, 5s));
        EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_dead_letters"), "0");
        const std::vector<test_target*> targets{&t};
        co_await r.shut(targets);
      },
      std::chrono::seconds(90));
}

TEST(delivery_engine, broadcast_subscriptions_follow_the_queue_mode_and_removal) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target t(io, {});
    co_await r.start();
    const auto queue = r.queue_name("engmode");
    co_await r.put(r.sub(queue, t));
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    EXPECT_EQ(r.service->status().at(0).amqp_queue, relay::amqp_name(queue));
    // Broadcast: the subscription moves to its own queue, bound to the fanout exchange.
    CO_ASSERT_OK(co_await r.modes->set(queue, relay::queue_mode::broadcast, clock::now() + 5s));
    const std::string own = consume_queue(queue, "hook", true);
    EXPECT_TRUE(co_await eventually(
        [&] {
          const auto st = r.service->status();
          return st.size() == 1 && st[0].amqp_queue == own && st[0].consuming;
        },
        10s));
    const auto id =
        r.publish(queue, "{}", "p1", std::nullopt, {}, std::nullopt, relay::queue_mode::broadcast);
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 1; }, 10s));
    if (!t.seen.empty()) {
      EXPECT_EQ(t.seen[0].header("Idempotency-Key"), id.to_string());
    }
    // Removed: the consumer stops and its queue goes.
    EXPECT_TRUE(queue_exists(own));
    r.registry.remove(queue, "hook");
    EXPECT_TRUE(r.service->status().empty());
    EXPECT_TRUE(co_await eventually([&] { return !queue_exists(own); }, 10s));
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

TEST(delivery_engine, the_rate_limit_spaces_requests_after_a_burst) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target t(io, {});
    co_await r.start();
    const auto queue = r.queue_name("engrate");
    auto s = r.sub(queue, t);
    s.rate_limit_per_sec = 20;  // one second of burst: 20 at once, then one per 50 ms
    s.concurrency = 64;
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    for (int i = 0; i < 40; ++i)
      r.publish(queue, "{}");
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 40; }, 10s));
    CO_ASSERT_TRUE(t.seen_at.size() == 40);
    const auto span = t.seen_at.back() - t.seen_at.front();
    EXPECT_GE(span, 900ms);
    EXPECT_LE(span, 3s);
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

}  // namespace
}  // namespace sluice::delivery
