// Subscriptions with a route in the delivery engine, in process against real RabbitMQ and
// PostgreSQL, with a fake route registry: the active route's url wins over the url, and a
// subscription with no active route and no url fails its attempts retryably (no_route), is never
// dead-lettered for it, and is delivered once the route is there.
#include "../../unit/fake_route_lookup.hpp"
#include "engine_rig.hpp"

namespace sluice::delivery {
namespace {

using namespace engine_test;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using amqp::test::sleep_for;

delivery_service_options with_routes(routing::route_lookup& lookup) {
  delivery_service_options o;
  o.routes = &lookup;
  return o;
}

std::string url_of(const test_target& t, const char* path) {
  return "http://127.0.0.1:" + std::to_string(t.port) + path;
}

TEST(delivery_routes, an_active_route_wins_over_the_url) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    test::fake_route_lookup lookup;
    rig r(io, db.url(), with_routes(lookup));
    test_target fallback(io, {});
    test_target routed(io, {});
    co_await r.start();
    const auto queue = r.queue_name("engroute");
    auto s = r.sub(queue, fallback);
    s.route = test::key_of("acme", "hook", "prod", "v1");
    lookup.active(*s.route, url_of(routed, "/routed?k=1"));
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    r.publish(queue, R"({"n": 1})");
    EXPECT_TRUE(co_await eventually([&] { return routed.seen.size() == 1; }, 10s));
    if (routed.seen.size() == 1) {
      EXPECT_EQ(routed.seen[0].target, "/routed?k=1");
    }
    // Deactivated: the url again.
    lookup.answers.clear();
    r.publish(queue, R"({"n": 2})");
    EXPECT_TRUE(co_await eventually([&] { return fallback.seen.size() == 1; }, 10s));
    if (fallback.seen.size() == 1) {
      EXPECT_EQ(fallback.seen[0].target, "/hook");
    }
    EXPECT_TRUE(co_await eventually(
        [&] {
          return r.metric("sluice_delivery_attempts_total{queue=\"" + queue +
                          "\",outcome=\"delivered\"}") == 2;
        },
        5s));
    // Each delivery resolves before its waits (rate, breaker, slot) and again before its call.
    EXPECT_EQ(lookup.asked.size(), 4u);
    const std::vector<test_target*> targets{&fallback, &routed};
    co_await r.shut(targets);
  });
}

// A delivery resolves its route, then waits (here for the rate limit's next token; a breaker
// or a concurrency slot hold it the same way, up to the hold bound). A route changed or
// deactivated meanwhile must not be called: the change reaches the delivery when its wait ends.
TEST(delivery_routes, a_route_changed_while_a_delivery_waits_is_not_called) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    test::fake_route_lookup lookup;
    rig r(io, db.url(), with_routes(lookup));
    test_target before(io, {});
    test_target after(io, {});
    co_await r.start();
    const auto queue = r.queue_name("engroute");
    auto s = r.sub(queue, before);
    s.url.clear();
    s.address = {};
    s.route = test::key_of("acme", "hook", "prod", "v1");
    s.timeout = 5s;
    s.concurrency = 2;
    s.rate_limit_per_sec = 1;  // the second delivery waits about a second for its token
    lookup.active(*s.route, url_of(before, "/before"));
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    r.publish(queue, R"({"n": 1})");
    r.publish(queue, R"({"n": 2})");
    // The first went out; the second resolved too and waits for the token.
    EXPECT_TRUE(co_await eventually(
        [&] { return before.seen.size() == 1 && lookup.asked.size() >= 2; }, 10s));
    lookup.active(*s.route, url_of(after, "/after"));
    EXPECT_TRUE(co_await eventually([&] { return after.seen.size() == 1; }, 10s));
    EXPECT_EQ(before.seen.size(), 1u);
    EXPECT_TRUE(co_await eventually(
        [&] {
          return r.metric("sluice_delivery_attempts_total{queue=\"" + queue +
                          "\",outcome=\"delivered\"}") == 2;
        },
        5s));
    const std::vector<test_target*> targets{&before, &after};
    co_await r.shut(targets);
  });
}

TEST(delivery_routes, no_route_and_no_url_retries_until_the_route_is_there) {
  test::scoped_database db;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    test::fake_route_lookup lookup;
    rig r(io, db.url(), with_routes(lookup));
    r.with_scheduler();
    test_target t(io, {});
    co_await r.start();
    const auto queue = r.queue_name("engroute");
    auto s = r.sub(queue, t);
    s.url.clear();
    s.address = {};
    s.route = test::key_of("acme", "hook", "prod", "v1");
    s.retry.max_attempts = 50;
    s.retry.initial_backoff = 300ms;
    s.retry.max_backoff = 300ms;
    co_await r.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming(queue); }, 10s));
    const auto id = r.publish(queue, R"({"n": 3})");
    // The first attempt finds no target: parked for a retry, nothing called.
    EXPECT_TRUE(co_await eventually(
        [&] {
          return r.metric("sluice_delivery_attempts_total{queue=\"" + queue +
                          "\",outcome=\"retry\"}") >= 1;
        },
        10s));
    EXPECT_TRUE(t.seen.empty());
    test::pg_session pg(db.url());
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_dead_letters"), "0");
    // The route appears: the next attempt is delivered there, same message.
    lookup.active(*s.route, url_of(t, "/late"));
    EXPECT_TRUE(co_await eventually([&] { return t.seen.size() == 1; }, 10s));
    if (t.seen.size() == 1) {
      EXPECT_EQ(t.seen[0].target, "/late");
      EXPECT_EQ(header(t.seen[0], "Idempotency-Key"), id.to_string());
      EXPECT_NE(header(t.seen[0], "X-Sluice-Attempt"), "1");
    }
    EXPECT_TRUE(co_await eventually(
        [&] {
          return r.metric("sluice_delivery_attempts_total{queue=\"" + queue +
                          "\",outcome=\"delivered\"}") == 1;
        },
        5s));
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_dead_letters"), "0");
    const std::vector<test_target*> targets{&t};
    co_await r.shut(targets);
  });
}

}  // namespace
}  // namespace sluice::delivery
