// Attacks on the delivery engine's promises (issue #10 review "attack2"), against real RabbitMQ
// and PostgreSQL with HTTP targets on the test's loop: a removed and re-added broadcast
// subscription loses nothing, the rate limit never holds a delivery past the hold bound, the
// breaker board forgets the targets no subscription uses.
#include <algorithm>
#include <set>

#include "engine_rig.hpp"

namespace sluice::delivery {
namespace {

using namespace engine_test;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using amqp::test::sleep_for;

bool queue_exists(const std::string& name) {
  try {
    amqp::test::independent_client admin(amqp::test::broker_url());
    admin.message_count(name);
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

std::size_t held(const rig& r) {
  std::size_t n = 0;
  for (const auto& c : r.service->status())
    n += c.in_flight;
  return n;
}

// A subscription removed while its consumer still holds a delivery, then added again at once:
// the old consumer must finish before the new one consumes (one consumer of the subscription at
// a time), and the removal's queue deletion must not run under the re-added subscription (it
// would delete the messages in it).
TEST(attack2_engine, a_removed_and_readded_broadcast_subscription_loses_nothing) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target t(io, {});
    t.hang = true;
    co_await r.start();
    const auto queue = r.queue_name("a2readd");
    CO_ASSERT_OK(co_await r.modes->set(queue, relay::queue_mode::broadcast, clock::now() + 5s));
    auto s = r.sub(queue, t);
    s.concurrency = 1;
    co_await r.put(s);
    const std::string own = consume_queue(queue, "hook", true);
    EXPECT_TRUE(co_await eventually(
        [&] {
          const auto st = r.service->status();
          return st.size() == 1 && st[0].amqp_queue == own && st[0].consuming;
        },
        10s));
    r.publish(queue, "{\"m\":1}", "p1", std::nullopt, {}, std::nullopt,
              relay::queue_mode::broadcast);
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 1; }, 10s));
    r.registry.remove(queue, "hook");
    r.registry.put(s);
    r.publish(queue, "{\"m\":2}", "p1", std::nullopt, {}, std::nullopt,
              relay::queue_mode::broadcast);
    // Long enough for the old consumer's 300 ms grace to end and a queue deletion after it to
    // have run: what must not happen has had its chance.
    co_await sleep_for(1500ms);
    t.unhang();
    const std::string delivered =
        "sluice_delivery_attempts_total{queue=\"" + queue + "\",outcome=\"delivered\"}";
    EXPECT_TRUE(co_await eventually([&] { return r.metric(delivered) == 2; }, 10s))
        << "delivered " << r.metric(delivered);
    EXPECT_TRUE(queue_exists(own));
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

// Waiting for a token of the rate limit is holding the delivery unacknowledged: past the hold
// bound (here the 1 s timeout) the delivery is parked ("deferred", same attempt) instead, and
// comes back later; none is lost.
TEST(attack2_engine, the_rate_limit_never_holds_a_delivery_past_the_hold_bound) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    r.with_scheduler();
    test_target t(io, {});
    co_await r.start();
    const auto queue = r.queue_name("a2rate");
    auto s = r.sub(queue, t);
    s.rate_limit_per_sec = 1;
    s.concurrency = 8;
    s.timeout = 1s;
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    std::set<std::string> ids;
    for (int i = 0; i < 8; ++i)
      ids.insert(r.publish(queue, "{}").to_string());
    EXPECT_TRUE(co_await eventually([&] { return held(r) > 0; }, 5s));
    // Without the bound the eighth waits ~7 s for its token.
    EXPECT_TRUE(co_await eventually([&] { return held(r) == 0; }, 3s)) << held(r) << " held";
    EXPECT_GE(
        r.metric("sluice_delivery_attempts_total{queue=\"" + queue + "\",outcome=\"deferred\"}"),
        1);
    EXPECT_TRUE(co_await eventually(
        [&] {
          std::set<std::string> seen;
          for (const auto& req : t.seen)
            seen.insert(std::string(req.header("Idempotency-Key").value_or("")));
          return std::includes(seen.begin(), seen.end(), ids.begin(), ids.end());
        },
        40s));
    for (const auto& req : t.seen)
      EXPECT_EQ(header(req, "X-Sluice-Attempt"), "1");  // deferral is no attempt
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

// A limit the AIMD halved leaves more messages held (the prefetch is the subscription's
// concurrency) than may go at once: waiting for a slot is holding them unacknowledged, so past
// the hold bound (here 500 ms) they are parked ("deferred") instead. The breaker stays out of
// it (a threshold never reached).
TEST(attack2_engine, a_shrunk_concurrency_limit_never_holds_a_delivery_past_the_hold_bound) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    delivery_service_options o;
    o.breaker.failure_threshold = 1000;
    o.delivery.max_hold = 500ms;
    rig r(io, db.url(), o);
    test_target t(io, {});
    t.hang = true;  // every request times out (1 s): an overload, the limit halves
    co_await r.start();
    const auto queue = r.queue_name("a2slots");
    auto s = r.sub(queue, t);
    s.concurrency = 4;
    s.timeout = 1s;
    s.retry.max_attempts = 5;
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    for (int i = 0; i < 8; ++i)
      r.publish(queue, "{}");
    const std::string deferred =
        "sluice_delivery_attempts_total{queue=\"" + queue + "\",outcome=\"deferred\"}";
    // After the first timeouts the limit is 2 and four are held: two wait for a slot, 1 s.
    EXPECT_TRUE(co_await eventually([&] { return r.metric(deferred) >= 1; }, 6s))
        << r.metrics.expose();
    EXPECT_LE(r.service->status().at(0).concurrency_limit, 2u);
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

// One partition, one message at a time: the others of a hot partition wait in its line, held
// unacknowledged. One that waited longer than the hold bound (500 ms; each answer takes 300 ms)
// is parked ("deferred") when its turn comes, the ones behind it are parked behind it, and all
// come back in order, none twice.
TEST(attack2_engine, a_partition_line_never_holds_a_delivery_past_the_hold_bound) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    delivery_service_options o;
    o.delivery.max_hold = 500ms;
    rig r(io, db.url(), o);
    r.with_scheduler();
    test_target t(io, {});
    t.delay = 300ms;
    co_await r.start();
    const auto queue = r.queue_name("a2line");
    CO_ASSERT_OK(co_await r.modes->set(queue, relay::queue_mode::broadcast, clock::now() + 5s));
    auto s = r.sub(queue, t);
    s.ordering = ordering::partition;
    s.concurrency = 8;
    s.timeout = 1s;
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i)
      ids.push_back(
          r.publish(queue, "{}", "A", std::nullopt, {}, std::nullopt, relay::queue_mode::broadcast)
              .to_string());
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() >= 6; }, 20s));
    std::vector<std::string> order;
    for (const auto& q : t.seen)
      order.push_back(std::string(q.header("Idempotency-Key").value_or("")));
    EXPECT_EQ(order, ids);
    EXPECT_GE(
        r.metric("sluice_delivery_attempts_total{queue=\"" + queue + "\",outcome=\"deferred\"}"),
        1);
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

// A target's breaker (and its gauge series) lives while a subscription delivers there: a
// subscription moved to another target leaves no series behind (subscriptions come and go; the
// breakers and label sets must not grow with every target ever used).
TEST(attack2_engine, the_breaker_of_a_target_no_subscription_uses_is_dropped) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target first(io, {});
    test_target second(io, {});
    co_await r.start();
    const auto queue = r.queue_name("a2board");
    co_await r.put(r.sub(queue, first));
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    r.publish(queue, "{}");
    EXPECT_TRUE(co_await eventually([&] { return first.seen.size() == 1; }, 10s));
    const std::string first_series =
        "sluice_delivery_circuit_state{target=\"127.0.0.1:" + std::to_string(first.port) + "\"}";
    const std::string second_series =
        "sluice_delivery_circuit_state{target=\"127.0.0.1:" + std::to_string(second.port) + "\"}";
    EXPECT_EQ(r.metric(first_series), 0);
    co_await r.put(r.sub(queue, second));
    r.publish(queue, "{}");
    EXPECT_TRUE(co_await eventually([&] { return second.seen.size() == 1; }, 10s));
    EXPECT_EQ(r.metric(second_series), 0);
    EXPECT_TRUE(co_await eventually([&] { return r.metric(first_series) == -1; }, 5s))
        << r.metrics.expose();
    const std::vector<test_target*> targets{&first, &second};
    co_await r.shut(targets);
  });
}

// GET .../subscriptions/{name} of a batch subscription this instance runs no consumer of (it is
// paused) shows the circuit of the target it delivers to: its batch url's host:port.
TEST(attack2_engine, a_paused_batch_subscription_shows_its_batch_targets_circuit) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target single(io, {});
    test_target batches(io, {});
    co_await r.start();
    const auto queue = r.queue_name("a2status");
    // A running subscription delivering to the batch target keeps its breaker in use.
    auto other = r.sub(queue, batches);
    other.name = "other";
    r.registry.put(other);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    auto s = r.sub(queue, single);
    s.name = "batched";
    batch_spec b;
    b.max_items = 10;
    b.max_wait = 100ms;
    b.url = "http://127.0.0.1:" + std::to_string(batches.port) + "/batch";
    s.batch = b;
    s.batch_address = target_address{"127.0.0.1", batches.port, "/batch"};
    s.paused = true;
    r.registry.put(s);
    const std::string key = breaker_board::key_of("127.0.0.1", batches.port);
    for (std::uint32_t i = 0; i < breaker_options{}.failure_threshold; ++i)
      r.service->breakers().on_failure(key, breaker_board::clock::now());
    EXPECT_EQ(r.service->breakers().state(key), breaker_state::open);
    EXPECT_EQ(r.service->status_of(queue, "batched")["circuit"], "open");
    const std::vector<test_target*> targets{&single, &batches};
    co_await r.shut(targets);
  });
}

// A stopped consumer still holds its deliveries until it finished (up to the stop grace):
// sluice_delivery_in_flight counts them, not 0 the moment the subscription is removed.
TEST(attack2_engine, in_flight_counts_the_deliveries_of_a_stopping_consumer) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io, db.url());
    test_target t(io, {});
    t.hang = true;
    co_await r.start();
    const auto queue = r.queue_name("a2gauge");
    co_await r.put(r.sub(queue, t));
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    r.publish(queue, "{}");
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 1; }, 10s));
    const std::string in_flight = "sluice_delivery_in_flight{queue=\"" + queue + "\"}";
    EXPECT_EQ(r.metric(in_flight), 1);
    r.registry.remove(queue, "hook");
    EXPECT_EQ(r.metric(in_flight), 1);  // its 300 ms of grace have not even begun
    t.unhang();
    EXPECT_TRUE(co_await eventually([&] { return r.metric(in_flight) == -1; }, 5s));
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

}  // namespace
}  // namespace sluice::delivery
