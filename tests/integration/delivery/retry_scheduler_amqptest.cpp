// The retry scheduler against a real PostgreSQL and RabbitMQ: due rows go to their
// subscription's queue exactly as the relay would publish them plus the delivery headers, and
// are deleted once confirmed; a returned publish keeps its row; expect() wakes the loop at the
// due time; PostgreSQL going away and coming back stops and resumes the loop without spinning.
// RabbitMQ is read with rabbitmq-c's own blocking client on the test's thread.
#include <atomic>
#include <cstdio>
#include <set>
#include <sys/resource.h>
#include <thread>

#include "sluice/delivery/retry_scheduler.hpp"
#include "sluice/store/migrations.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "independent_client.hpp"
#include "sluice_test/loop_thread.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/tcp_proxy.hpp"
#include "test_support.hpp"

namespace sluice::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using amqp::test::independent_client;
using amqp::test::received_message;
using sluice::test::loop_thread;
using sluice::test::pg_session;
using sluice::test::scoped_database;
using sluice::test::tcp_proxy;
using system_clock = std::chrono::system_clock;

store::clock::time_point in(std::chrono::milliseconds d) {
  return store::clock::now() + d;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (condition())
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

class retry_scheduler_test : public ::testing::Test {
 protected:
  scoped_database db_;
  loop_thread loop_;
  independent_client broker_{amqp::test::broker_url()};
  metrics::registry registry_;
  std::unique_ptr<store::pg_pool> pool_;
  std::unique_ptr<retry_store> store_;
  std::unique_ptr<relay::queue_modes> modes_;
  std::shared_ptr<amqp::client> client_;
  std::shared_ptr<retry_scheduler> scheduler_;
  std::vector<std::string> amqp_queues_;
  uuid_v7_generator ids_;
  std::set<std::pair<std::string, std::string>> ordered_;

  // The schema first: tests write subscriptions before the scheduler starts.
  void SetUp() override {
    loop_.run([&]() -> asio::awaitable<void> {
      store::pool_options po;
      po.connection.conninfo = db_.url();
      store::pg_pool pool(loop_.io().get_executor(), po);
      const auto migrated = co_await store::apply_migrations(pool, in(10s));
      EXPECT_FALSE(migrated.ec) << migrated.message;
      pool.shutdown();
    }());
  }

  void TearDown() override {
    loop_.run(shutdown());
    for (const auto& q : amqp_queues_) {
      try {
        broker_.delete_queue(q);
      } catch (const std::exception&) {
      }
    }
  }

  asio::awaitable<void> shutdown() {
    if (scheduler_)
      co_await scheduler_->stop();
    if (client_)
      co_await client_->stop();
    scheduler_.reset();
    client_.reset();
    store_.reset();
    modes_.reset();
    if (pool_)
      pool_->shutdown();
    pool_.reset();
  }

  // Everything the scheduler needs, on the loop; `pg_url` lets a test put a proxy in between.
  void start(retry_scheduler_options options, const std::string& pg_url = {},
             std::optional<std::uint16_t> amqp_port = std::nullopt) {
    const std::string url = pg_url.empty() ? db_.url() : pg_url;
    loop_.run([&]() -> asio::awaitable<void> {
      store::pool_options po;
      po.connection.conninfo = url;
      po.connection.connect_timeout = 2s;
      po.max_connections = 2;
      po.reconnect_backoff_max = 500ms;
      pool_ = std::make_unique<store::pg_pool>(loop_.io().get_executor(), po);
      const auto migrated = co_await store::apply_migrations(*pool_, in(10s));
      EXPECT_FALSE(migrated.ec) << migrated.message;
      store_ = std::make_unique<retry_store>(*pool_);
      modes_ = std::make_unique<relay::queue_modes>(*pool_);
      EXPECT_FALSE(co_await modes_->refresh(in(10s)));
      amqp::client_options co;
      auto broker = amqp::test::broker_url();
      if (amqp_port)
        broker.port = *amqp_port;
      co.connection = amqp::test::options_for(broker);
      co.reconnect_initial_delay = 50ms;
      co.reconnect_max_delay = 400ms;
      co.publisher.publish_timeout = 5s;
      client_ = amqp::client::create(loop_.io().get_executor(), co);
      client_->start();
      EXPECT_TRUE(co_await client_->wait_connected(in(10s)));
    }());
    start_scheduler(options);
  }

  void start_scheduler(retry_scheduler_options options) {
    auto is_ordered = [this](std::string_view q, std::string_view s) {
      return ordered_.contains({std::string(q), std::string(s)});
    };
    loop_.run([&]() -> asio::awaitable<void> {
      scheduler_ = retry_scheduler::create(loop_.io().get_executor(), options, *store_, client_,
                                           *modes_, registry_, is_ordered);
      scheduler_->start();
      co_return;
    }());
  }

  void add_subscription(const std::string& queue, const std::string& name) {
    pg_session(db_.url()).query("INSERT INTO sluice_subscriptions (queue, name, spec) VALUES ('" +
                                queue + "', '" + name + "', '{}')");
  }

  std::string declare(const std::string& amqp_queue) {
    broker_.declare_queue(amqp_queue, true, "classic");
    amqp_queues_.push_back(amqp_queue);
    return amqp_queue;
  }

  parked_message message(const std::string& queue, const std::string& subscription) {
    parked_message m;
    m.queue = queue;
    m.subscription = subscription;
    m.message_id = ids_.next();
    m.partition = "p-1";
    m.headers = {{"queue", queue}, {"partition", "p-1"}};
    m.created_ms = 1'720'000'123'456;
    m.payload = R"({"n": 1,  "s": "\u00e9"})";
    m.attempt = 2;
    return m;
  }

  void park(const parked_message& m, system_clock::time_point due) {
    const auto ec = loop_.run(store_->park(m, due, in(10s)));
    ASSERT_FALSE(ec) << store_->last_error();
  }

  int rows() {
    return std::stoi(pg_session(db_.url()).scalar("SELECT count(*) FROM sluice_delivery_retries"));
  }

  double publishes(const std::string& outcome) {
    return registry_.add_counter("sluice_delivery_retry_publishes_total", "", {"outcome"})
        .with({outcome})
        .value();
  }

  static const received_message* by_id(const std::vector<received_message>& got, const uuid& id) {
    for (const auto& m : got) {
      if (m.message_id == id.to_string())
        return &m;
    }
    return nullptr;
  }
};

TEST_F(retry_scheduler_test, publishes_due_rows_to_their_subscription_queue_and_deletes_them) {
  const std::string q = amqp::test::unique_name("rt");
  const std::string qb = amqp::test::unique_name("rtb");
  add_subscription(q, "s");
  add_subscription(qb, "b");
  ordered_.insert({qb, "b"});
  const std::string queue_amqp = declare("sluice." + q);
  const std::string broadcast_amqp = declare("sluice." + qb + "~b");

  retry_scheduler_options options;
  options.poll = 200ms;
  start(options);
  ASSERT_FALSE(loop_.run(modes_->set(qb, relay::queue_mode::broadcast, in(10s))));

  parked_message full = message(q, "s");
  full.headers = {
      {"queue", q},           {"partition", "p-1"},      {"namespace", "ns"},      {"task", "t"},
      {"traceId", "trace-1"}, {"transactionId", "tx-1"}, {"x-sluice-attempt", "1"}};
  full.attempt = 3;
  full.first_attempt_ms = 1'720'000'200'000;
  parked_message long_tx = message(q, "s");
  const std::string tx(300, 'x');
  long_tx.headers.emplace_back("transactionId", tx);
  const parked_message ordered = message(qb, "b");
  const parked_message redrive = message(qb, "b");

  // The scheduler is running: park them all in one go, then count on its poll.
  loop_.run([&]() -> asio::awaitable<void> {
    const auto due = system_clock::now() - 1s;
    for (const parked_message* m :
         std::initializer_list<const parked_message*>{&full, &long_tx, &ordered}) {
      const auto ec = co_await store_->park(*m, due, in(10s));
      EXPECT_FALSE(ec) << store_->last_error();
    }
    co_return;
  }());
  pg_session(db_.url()).query(
      "INSERT INTO sluice_delivery_retries (queue, subscription, message_id, attempt, "
      "due_at, origin, partition, headers, created_ms, payload) VALUES ('" +
      qb + "', 'b', '" + redrive.message_id.to_string() +
      "', 1, now(), 'redrive', 'p-1', '{\"queue\":\"" + qb + "\",\"partition\":\"p-1\"}', " +
      std::to_string(redrive.created_ms) + ", convert_to('" + redrive.payload + "', 'UTF8'))");

  const auto got = broker_.consume(queue_amqp, 2, 10s);
  const auto got_b = broker_.consume(broadcast_amqp, 2, 10s);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(got_b.size(), 2u);

  const received_message* a = by_id(got, full.message_id);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->exchange, "");
  EXPECT_EQ(a->routing_key, queue_amqp);
  EXPECT_EQ(a->body, full.payload);
  EXPECT_EQ(a->content_type, std::optional<std::string>("application/json"));
  EXPECT_EQ(a->delivery_mode, std::optional<std::uint8_t>(2));
  EXPECT_EQ(a->timestamp, std::optional<std::uint64_t>(1'720'000'123));
  EXPECT_EQ(a->correlation_id, std::optional<std::string>("tx-1"));
  const std::map<std::string, std::string> want_a = {
      {"queue", q},
      {"partition", "p-1"},
      {"namespace", "ns"},
      {"task", "t"},
      {"traceId", "trace-1"},
      {"transactionId", "tx-1"},
      {"x-sluice-attempt", "3"},  // the stored x-sluice-attempt is not the one that counts
      {"x-sluice-first-attempt-ms", "1720000200000"}};
  EXPECT_EQ(a->string_headers, want_a);

  const received_message* b = by_id(got, long_tx.message_id);
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->correlation_id) << "a transactionId over 255 bytes is in the header only";
  EXPECT_EQ(b->string_headers.at("transactionId"), tx);
  EXPECT_EQ(b->string_headers.at("x-sluice-attempt"), "2");
  EXPECT_FALSE(b->string_headers.contains("x-sluice-first-attempt-ms"));
  EXPECT_FALSE(b->string_headers.contains("x-sluice-released"));

  const received_message* c = by_id(got_b, ordered.message_id);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->routing_key, broadcast_amqp);
  EXPECT_EQ(c->string_headers.at("x-sluice-released"), "1")
      << "a retry of an ordered subscription's head is released";
  const received_message* d = by_id(got_b, redrive.message_id);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->body, redrive.payload);
  EXPECT_EQ(d->string_headers.at("x-sluice-attempt"), "1");
  EXPECT_FALSE(d->string_headers.contains("x-sluice-released"))
      << "a re-drive takes its place in its partition";

  EXPECT_TRUE(eventually([&] { return rows() == 0; }, 10s)) << "confirmed rows are deleted";
  EXPECT_EQ(publishes("published"), 4);
  EXPECT_TRUE(eventually(
      [&] { return registry_.expose().find("sluice_delivery_retry_rows 0") != std::string::npos; },
      10s));
}

TEST_F(retry_scheduler_test, a_returned_publish_keeps_its_row_until_its_queue_exists) {
  const std::string q = amqp::test::unique_name("rtr");
  add_subscription(q, "s");
  retry_scheduler_options options;
  options.poll = 100ms;
  options.lease = 1s;
  start(options);
  const parked_message m = message(q, "s");
  park(m, system_clock::now());

  ASSERT_TRUE(eventually([&] { return publishes("returned") >= 1; }, 10s));
  EXPECT_EQ(rows(), 1) << "no queue took it: the row stays";
  // Published again only when its lease ran out, not on every 100 ms poll.
  const auto start_returned = publishes("returned");
  const auto until = std::chrono::steady_clock::now() + 2500ms;
  eventually([&] { return std::chrono::steady_clock::now() >= until; }, 3s);
  EXPECT_LE(publishes("returned") - start_returned, 3);
  EXPECT_EQ(rows(), 1);

  const std::string amqp_queue = declare("sluice." + q);
  const auto got = broker_.consume(amqp_queue, 1, 10s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message_id, m.message_id.to_string());
  EXPECT_TRUE(eventually([&] { return rows() == 0; }, 10s));
  EXPECT_EQ(publishes("published"), 1);
}

TEST_F(retry_scheduler_test, rows_of_paused_or_deleted_subscriptions_wait_or_go) {
  const std::string q = amqp::test::unique_name("rtp");
  add_subscription(q, "paused");
  add_subscription(q, "gone");
  pg_session(db_.url()).query("UPDATE sluice_subscriptions SET paused_at = now()");
  const std::string paused_amqp = declare("sluice." + q);
  retry_scheduler_options options;
  options.poll = 100ms;
  options.lease = 500ms;  // the grace of rows of deleted subscriptions
  options.housekeeping_interval = 200ms;
  start(options);
  park(message(q, "paused"), system_clock::now() - 1h);
  park(message(q, "gone"), system_clock::now() - 1h);
  pg_session(db_.url()).query("DELETE FROM sluice_subscriptions WHERE name = 'gone'");

  EXPECT_TRUE(eventually([&] { return rows() == 1; }, 10s)) << "the deleted one's row goes";
  EXPECT_EQ(broker_.message_count(paused_amqp), 0u);
  pg_session(db_.url()).query("UPDATE sluice_subscriptions SET paused_at = NULL");
  EXPECT_EQ(broker_.consume(paused_amqp, 1, 10s).size(), 1u) << "resumed: published";
  EXPECT_TRUE(eventually([&] { return rows() == 0; }, 10s));
}

TEST_F(retry_scheduler_test, expect_wakes_the_loop_at_the_due_time) {
  const std::string q = amqp::test::unique_name("rte");
  add_subscription(q, "s");
  const std::string amqp_queue = declare("sluice." + q);
  retry_scheduler_options options;
  options.poll = 60s;  // only expect() can wake it in time
  start(options);

  for (int i = 0; i < 3; ++i) {
    const parked_message m = message(q, "s");
    const auto due = system_clock::now() + 700ms;
    park(m, due);
    loop_.run([&]() -> asio::awaitable<void> {
      scheduler_->expect(due);
      co_return;
    }());
    const auto got = broker_.consume(amqp_queue, 1, 5s);
    const auto arrived = system_clock::now();
    ASSERT_EQ(got.size(), 1u) << i;
    EXPECT_EQ(got[0].message_id, m.message_id.to_string());
    // Due times are stored in milliseconds: at most 1 ms early.
    EXPECT_GE(arrived, due - 1ms) << i;
    // Well below the 60 s poll, so only expect() can have woken it; the slack is for a loaded
    // machine under ASan (118 ms late in a CI rehearsal against a bound of 100 ms).
    EXPECT_LE(arrived, due + 1s)
        << i << ": " << std::chrono::duration_cast<std::chrono::milliseconds>(arrived - due).count()
        << " ms late";
  }
  EXPECT_TRUE(eventually([&] { return rows() == 0; }, 10s));
}

TEST_F(retry_scheduler_test, resumes_after_postgresql_comes_back_without_spinning_meanwhile) {
  const std::string q = amqp::test::unique_name("rtc");
  add_subscription(q, "s");
  const std::string amqp_queue = declare("sluice." + q);
  tcp_proxy proxy("127.0.0.1", sluice::test::url_port(db_.url()));
  retry_scheduler_options options;
  options.poll = 100ms;
  options.statement_timeout = 1s;
  options.backoff_min = 50ms;
  options.backoff_max = 500ms;
  start(options, sluice::test::url_with_port(db_.url(), proxy.port()));

  park(message(q, "s"), system_clock::now());
  ASSERT_EQ(broker_.consume(amqp_queue, 1, 10s).size(), 1u);
  ASSERT_TRUE(eventually([&] { return rows() == 0; }, 10s));

  proxy.cut();
  // Parked by another instance while this one cannot reach PostgreSQL.
  const parked_message later = message(q, "s");
  pg_session(db_.url()).query(
      "INSERT INTO sluice_delivery_retries (queue, subscription, message_id, attempt, "
      "due_at, partition, headers, created_ms, payload) VALUES ('" +
      q + "', 's', '" + later.message_id.to_string() +
      "', 2, now(), 'p-1', '{}', 1, '\\x7b7d'::bytea)");
  const double cpu_before = cpu_seconds();
  EXPECT_TRUE(broker_.consume(amqp_queue, 1, 2s).empty()) << "nothing claims it meanwhile";
  EXPECT_LT(cpu_seconds() - cpu_before, 0.4) << "the loop must back off, not spin";

  proxy.restore();
  const auto got = broker_.consume(amqp_queue, 1, 10s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message_id, later.message_id.to_string());
  EXPECT_EQ(got[0].body, "{}");
  EXPECT_TRUE(eventually([&] { return rows() == 0; }, 10s));
  loop_.run(shutdown());  // before the proxy goes
}

TEST_F(retry_scheduler_test, does_not_claim_while_rabbitmq_is_away_and_resumes_after) {
  const std::string q = amqp::test::unique_name("rtm");
  add_subscription(q, "s");
  const std::string amqp_queue = declare("sluice." + q);
  const auto broker = amqp::test::broker_url();
  tcp_proxy proxy(broker.host, broker.port);
  retry_scheduler_options options;
  options.poll = 100ms;
  start(options, {}, proxy.port());

  proxy.cut();
  ASSERT_TRUE(eventually([&] { return !client_->ready(); }, 10s));
  for (int i = 0; i < 5; ++i)
    park(message(q, "s"), system_clock::now());
  const double cpu_before = cpu_seconds();
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  eventually([&] { return std::chrono::steady_clock::now() >= until; }, 2s);
  EXPECT_LT(cpu_seconds() - cpu_before, 0.4) << "the loop must wait, not spin";
  EXPECT_EQ(pg_session(db_.url()).scalar(
                "SELECT count(*) FROM sluice_delivery_retries WHERE claimed_until IS NOT NULL"),
            "0")
      << "rows nobody can publish are left for other instances";

  proxy.restore();
  EXPECT_EQ(broker_.consume(amqp_queue, 5, 15s).size(), 5u);
  EXPECT_TRUE(eventually([&] { return rows() == 0; }, 10s));
  loop_.run(shutdown());  // before the proxy goes
}

TEST_F(retry_scheduler_test, a_backlog_drains_in_batches) {
  const std::string q = amqp::test::unique_name("rtd");
  add_subscription(q, "s");
  const std::string amqp_queue = declare("sluice." + q);
  constexpr int total = 2000;
  pg_session(db_.url()).query(
      "INSERT INTO sluice_delivery_retries (queue, subscription, message_id, attempt, "
      "due_at, partition, headers, created_ms, payload) SELECT '" +
      q +
      "', 's', gen_random_uuid(), 2, now() - i * interval '1 millisecond', 'p', "
      "'{}', i, convert_to(i::text, 'UTF8') FROM generate_series(1, " +
      std::to_string(total) + ") AS i");
  retry_scheduler_options options;
  options.poll = 60s;  // full batches follow each other without waiting for a poll
  options.batch = 300;
  const auto started = std::chrono::steady_clock::now();
  start(options);
  const auto got = broker_.consume(amqp_queue, total, 10s);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(total));
  std::set<std::string> ids;
  for (const auto& m : got)
    ids.insert(*m.message_id);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(total)) << "each once";
  EXPECT_TRUE(eventually([&] { return rows() == 0; }, 10s));
  EXPECT_EQ(publishes("published"), total);
  std::printf("drained %d rows in %lld ms\n", total,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));
}

}  // namespace
}  // namespace sluice::delivery
