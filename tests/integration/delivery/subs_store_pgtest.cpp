// subscription_store and subscription_follower driven directly on a real PostgreSQL: the
// queue-mode conflict under concurrency, and a follower catching changes by notification and
// after its connection was cut.
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/delivery/subscription_follower.hpp"
#include "sluice/delivery/subscription_store.hpp"
#include "sluice/store/migrations.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "sluice_test/pg.hpp"
#include "sluice_test/tcp_proxy.hpp"

namespace sluice::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

subscription sub(const std::string& queue, const std::string& name,
                 const std::string& url = "http://127.0.0.1:1/hook") {
  subscription s;
  s.queue = queue;
  s.name = name;
  s.url = url;
  s.address.host = "127.0.0.1";
  s.address.port = 1;
  s.address.target = "/hook";
  return s;
}

class subs_store_test : public ::testing::Test {
 protected:
  subs_store_test() {
    pool_ = make_pool();
    run([&]() -> asio::awaitable<void> {
      const auto r = co_await store::apply_migrations(*pool_, clock::now() + 10s);
      EXPECT_FALSE(r.ec) << r.message;
    });
    store_ = std::make_unique<subscription_store>(*pool_);
  }

  std::unique_ptr<store::pg_pool> make_pool() {
    store::pool_options o;
    o.connection.conninfo = db_.url();
    o.max_connections = 2;
    return std::make_unique<store::pg_pool>(io_.get_executor(), o);
  }

  store::listen_options options(const std::string& conninfo) {
    store::listen_options o;
    o.connection.conninfo = conninfo;
    o.full_reload_interval = 30s;  // only notifications and reconnects here
    o.backoff_min = 50ms;
    o.backoff_max = 200ms;
    return o;
  }

  void run(std::function<asio::awaitable<void>()> body) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await body();
          done = true;
        },
        asio::detached);
    io_.restart();
    while (!done && io_.run_one()) {
    }
  }

  static asio::awaitable<std::optional<clock::duration>> until(std::function<bool()> cond,
                                                               std::chrono::milliseconds within) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    const auto start = clock::now();
    while (!cond()) {
      if (clock::now() >= start + within)
        co_return std::nullopt;
      t.expires_after(2ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    co_return clock::now() - start;
  }

  static store::clock::time_point soon() { return clock::now() + 5s; }

  test::scoped_database db_;
  asio::io_context io_;
  metrics::registry metrics_;
  std::unique_ptr<store::pg_pool> pool_;
  std::unique_ptr<subscription_store> store_;
};

TEST_F(subs_store_test, round_trips_a_subscription_and_its_pause_state) {
  run([&]() -> asio::awaitable<void> {
    auto s = sub("orders", "billing");
    s.secrets = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
    s.headers = {{"X-Team", "a"}};
    auto put = co_await store_->put(s, true, soon());
    EXPECT_FALSE(put.status) << put.status.message;
    EXPECT_TRUE(put.created);
    EXPECT_FALSE(put.conflict_with);
    if (!put.stored) {
      ADD_FAILURE() << "nothing stored";
      co_return;
    }
    EXPECT_TRUE(put.stored->same_as(s));
    EXPECT_GT(put.stored->updated_ms, 1'700'000'000'000);
    put = co_await store_->put(s, true, soon());
    EXPECT_FALSE(put.created);

    auto paused = co_await store_->set_paused("orders", "billing", true, "gone: 410", soon());
    EXPECT_TRUE(paused.found);
    EXPECT_FALSE((co_await store_->set_paused("orders", "nothing", true, "gone", soon())).found);
    // A PUT redefines, it does not resume.
    s.timeout = 5s;
    put = co_await store_->put(s, true, soon());
    EXPECT_TRUE(put.stored && put.stored->paused && put.stored->paused_reason == "gone: 410");

    auto [status, loaded] = co_await store_->load("orders", "billing", soon());
    EXPECT_FALSE(status);
    EXPECT_TRUE(loaded && loaded->paused && loaded->timeout == 5s && loaded->secrets == s.secrets &&
                loaded->headers == s.headers);

    EXPECT_TRUE((co_await store_->set_paused("orders", "billing", false, "", soon())).found);
    auto [status2, resumed] = co_await store_->load("orders", "billing", soon());
    EXPECT_TRUE(resumed && !resumed->paused && resumed->paused_reason.empty());

    co_await store_->put(sub("audit", "x"), true, soon());
    co_await store_->put(sub("orders", "analytics"), false, soon());
    const auto all = co_await store_->load_all(std::nullopt, soon());
    if (all.items.size() != 3u) {
      ADD_FAILURE() << all.items.size() << " subscriptions";
      co_return;
    }
    EXPECT_EQ(all.items[0].queue + "/" + all.items[0].name, "audit/x");
    EXPECT_EQ(all.items[1].name, "analytics");
    const auto of_orders = co_await store_->load_all(std::string("orders"), soon());
    EXPECT_EQ(of_orders.items.size(), 2u);

    EXPECT_TRUE((co_await store_->remove("orders", "billing", soon())).found);
    EXPECT_FALSE((co_await store_->remove("orders", "billing", soon())).found);
    auto [status3, gone] = co_await store_->load("orders", "billing", soon());
    EXPECT_FALSE(gone);
  });
}

TEST_F(subs_store_test, a_queue_mode_queue_takes_one_subscription) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE((co_await store_->put(sub("orders", "a"), true, soon())).conflict_with);
    auto second = co_await store_->put(sub("orders", "b"), true, soon());
    EXPECT_FALSE(second.status);
    EXPECT_EQ(second.conflict_with, std::optional<std::string>("a"));
    EXPECT_FALSE(second.stored);
    // Replacing the one it has is no conflict; in broadcast mode a second one is fine.
    EXPECT_FALSE(
        (co_await store_->put(sub("orders", "a", "http://h/2"), true, soon())).conflict_with);
    EXPECT_FALSE((co_await store_->put(sub("orders", "b"), false, soon())).conflict_with);
    const auto all = co_await store_->load_all(std::string("orders"), soon());
    EXPECT_EQ(all.items.size(), 2u);
  });
}

TEST_F(subs_store_test, the_queue_row_read_under_the_lock_wins_over_the_callers_default) {
  test::pg_session pg(db_.url());
  pg.query("INSERT INTO sluice_queues (queue, mode) VALUES ('q', 'queue'), ('b', 'broadcast')");
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE((co_await store_->put(sub("q", "a"), false, soon())).conflict_with);
    EXPECT_EQ((co_await store_->put(sub("q", "b"), false, soon())).conflict_with,
              std::optional<std::string>("a"));
    auto ordered = sub("q", "a");
    ordered.ordering = ordering::partition;
    const auto refused = co_await store_->put(ordered, false, soon());
    EXPECT_TRUE(refused.ordering_needs_broadcast);
    EXPECT_FALSE(refused.stored);
    EXPECT_FALSE((co_await store_->put(sub("b", "x"), true, soon())).conflict_with);
    EXPECT_FALSE((co_await store_->put(sub("b", "y"), true, soon())).conflict_with);
    auto ordered_b = sub("b", "z");
    ordered_b.ordering = ordering::partition;
    EXPECT_TRUE((co_await store_->put(ordered_b, true, soon())).stored);
  });
}

TEST_F(subs_store_test, a_switch_to_queue_mode_is_refused_while_subscriptions_forbid_it) {
  test::pg_session pg(db_.url());
  pg.query("INSERT INTO sluice_queues (queue, mode) VALUES ('b', 'broadcast')");
  run([&]() -> asio::awaitable<void> {
    co_await store_->put(sub("b", "x"), false, soon());
    co_await store_->put(sub("b", "y"), false, soon());
    auto r = co_await store_->switch_to_queue_mode("b", soon());
    EXPECT_FALSE(r.status) << r.status.message;
    EXPECT_FALSE(r.switched);
    EXPECT_EQ(r.subscriptions, (std::vector<std::string>{"x", "y"}));
    co_await store_->remove("b", "y", soon());
    auto ordered = sub("b", "x");
    ordered.ordering = ordering::partition;
    co_await store_->put(ordered, false, soon());
    r = co_await store_->switch_to_queue_mode("b", soon());
    EXPECT_FALSE(r.switched);
    EXPECT_EQ(r.ordered, std::optional<std::string>("x"));
    co_await store_->put(sub("b", "x"), false, soon());
    r = co_await store_->switch_to_queue_mode("b", soon());
    EXPECT_TRUE(r.switched);
    EXPECT_TRUE((co_await store_->switch_to_queue_mode("empty", soon())).switched);
  });
  EXPECT_EQ(pg.scalar("SELECT mode FROM sluice_queues WHERE queue = 'b'"), "queue");
  EXPECT_EQ(pg.scalar("SELECT mode FROM sluice_queues WHERE queue = 'empty'"), "queue");
}

TEST_F(subs_store_test, a_switch_racing_a_second_subscription_never_leaves_both) {
  auto other_pool = make_pool();
  subscription_store other(*other_pool);
  test::pg_session pg(db_.url());
  constexpr int rounds = 30;
  int switches_first = 0;
  for (int i = 0; i < rounds; ++i) {
    const std::string queue = "sw" + std::to_string(i);
    pg.query("INSERT INTO sluice_queues (queue, mode) VALUES ('" + queue + "', 'broadcast')");
    run([&]() -> asio::awaitable<void> { co_await store_->put(sub(queue, "a"), false, soon()); });
    queue_mode_switch_result switched;
    subscription_put_result added;
    int finished = 0;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          switched = co_await store_->switch_to_queue_mode(queue, soon());
          ++finished;
        },
        asio::detached);
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          added = co_await other.put(sub(queue, "b"), false, soon());
          ++finished;
        },
        asio::detached);
    io_.restart();
    while (finished < 2 && io_.run_one()) {
    }
    ASSERT_FALSE(switched.status) << switched.status.message;
    ASSERT_FALSE(added.status) << added.status.message;
    // Either the switch came first (then b conflicts) or b did (then the switch is refused).
    EXPECT_NE(switched.switched, added.stored.has_value()) << queue;
    EXPECT_EQ(switched.switched, added.conflict_with.has_value()) << queue;
    switches_first += switched.switched;
  }
  std::printf("the switch won %d of %d races\n", switches_first, rounds);
}

TEST_F(subs_store_test, of_two_racing_puts_on_a_queue_mode_queue_exactly_one_wins) {
  // Two pools: two connections, so both transactions really run at once on the server.
  auto other_pool = make_pool();
  subscription_store other(*other_pool);
  constexpr int rounds = 30;
  int conflicts = 0;
  for (int i = 0; i < rounds; ++i) {
    const std::string queue = "race" + std::to_string(i);
    subscription_put_result a, b;
    int finished = 0;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          a = co_await store_->put(sub(queue, "a"), true, soon());
          ++finished;
        },
        asio::detached);
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          b = co_await other.put(sub(queue, "b"), true, soon());
          ++finished;
        },
        asio::detached);
    io_.restart();
    while (finished < 2 && io_.run_one()) {
    }
    ASSERT_FALSE(a.status) << a.status.message;
    ASSERT_FALSE(b.status) << b.status.message;
    EXPECT_NE(a.conflict_with.has_value(), b.conflict_with.has_value()) << queue;
    conflicts += a.conflict_with.has_value() + b.conflict_with.has_value();
    run([&]() -> asio::awaitable<void> {
      const auto all = co_await store_->load_all(queue, soon());
      EXPECT_EQ(all.items.size(), 1u) << queue;
    });
  }
  EXPECT_EQ(conflicts, rounds);
}

TEST_F(subs_store_test, a_change_through_one_store_reaches_another_follower_within_a_second) {
  subscription_registry registry;
  std::vector<std::string> changes;
  registry.on_change(
      [&](const std::string& q, const std::string& n) { changes.push_back(q + "/" + n); });
  subscription_follower follower(io_.get_executor(), registry, options(db_.url()), metrics_);
  asio::co_spawn(io_, follower.run(), asio::detached);
  run([&]() -> asio::awaitable<void> {
    co_await store_->put(sub("orders", "before"), false, soon());
    EXPECT_TRUE(
        co_await until([&] { return follower.mode() == store::follower_mode::following; }, 5s));
    EXPECT_TRUE(registry.loaded());
    // Read by the first full reload or by its notification, whichever came later.
    EXPECT_TRUE(co_await until([&] { return registry.find("orders", "before") != nullptr; }, 1s));

    const auto put_at = clock::now();
    co_await store_->put(sub("orders", "new"), false, soon());
    const auto seen = co_await until([&] { return registry.find("orders", "new") != nullptr; }, 1s);
    EXPECT_TRUE(seen);
    std::printf("put seen by the follower %.1f ms after the commit\n",
                std::chrono::duration<double, std::milli>(clock::now() - put_at).count());

    co_await store_->set_paused("orders", "new", true, "gone: 410", soon());
    EXPECT_TRUE(co_await until(
        [&] {
          const auto s = registry.find("orders", "new");
          return s && s->paused && s->paused_reason == "gone: 410";
        },
        1s));
    co_await store_->remove("orders", "before", soon());
    EXPECT_TRUE(co_await until([&] { return registry.find("orders", "before") == nullptr; }, 1s));
    // Every change was announced once: no echo of an unchanged row.
    EXPECT_EQ(changes, (std::vector<std::string>{"orders/before", "orders/new", "orders/new",
                                                 "orders/before"}));
    follower.stop();
    co_await follower.wait_stopped();
  });
}

TEST_F(subs_store_test, a_change_made_while_the_connection_was_cut_is_picked_up_after_reconnect) {
  test::tcp_proxy proxy("127.0.0.1", test::url_port(db_.url()));
  subscription_registry registry;
  subscription_follower follower(io_.get_executor(), registry,
                                 options(test::url_with_port(db_.url(), proxy.port())), metrics_);
  asio::co_spawn(io_, follower.run(), asio::detached);
  run([&]() -> asio::awaitable<void> {
    co_await store_->put(sub("orders", "kept"), false, soon());
    EXPECT_TRUE(
        co_await until([&] { return follower.mode() == store::follower_mode::following; }, 5s));
    const auto reloads = follower.full_reloads();
    proxy.cut();
    EXPECT_TRUE(
        co_await until([&] { return follower.mode() != store::follower_mode::following; }, 5s));
    co_await store_->put(sub("orders", "while-away"), false, soon());
    co_await store_->remove("orders", "kept", soon());
    co_await until([] { return false; }, 300ms);  // reconnects fail meanwhile
    EXPECT_EQ(registry.find("orders", "while-away"), nullptr);
    proxy.restore();
    const auto caught_up = co_await until(
        [&] {
          return registry.find("orders", "while-away") != nullptr &&
                 registry.find("orders", "kept") == nullptr;
        },
        5s);
    EXPECT_TRUE(caught_up);
    if (caught_up)
      std::printf("caught up %.1f ms after PostgreSQL came back\n",
                  std::chrono::duration<double, std::milli>(*caught_up).count());
    EXPECT_GT(follower.full_reloads(), reloads);
    follower.stop();
    co_await follower.wait_stopped();
  });
}

}  // namespace
}  // namespace sluice::delivery
