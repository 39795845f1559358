// service_follower and service_store driven directly on a real PostgreSQL, with intervals
// short enough to test the safety-net reload and the back-off.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "sluice/services/service_follower.hpp"
#include "sluice/services/service_store.hpp"
#include "sluice/store/migrations.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "sluice_test/pg.hpp"

namespace sluice::services {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

service named(const std::string& name, std::chrono::milliseconds timeout = 60s) {
  service s;
  s.name = name;
  s.default_flavour = "std";
  s.flavours = {{"std", "http://127.0.0.1:1"}, {"green", ""}};
  s.timeout = timeout;
  return s;
}

class follower_test : public ::testing::Test {
 protected:
  follower_test() {
    store::pool_options o;
    o.connection.conninfo = db_.url();
    o.max_connections = 2;
    pool_ = std::make_unique<store::pg_pool>(io_.get_executor(), o);
    run([&]() -> asio::awaitable<void> {
      const auto r = co_await store::apply_migrations(*pool_, clock::now() + 10s);
      EXPECT_FALSE(r.ec) << r.message;
    });
    store_ = std::make_unique<service_store>(*pool_, service_defaults{});
  }

  follower_options options() {
    follower_options o;
    o.connection.conninfo = db_.url();
    o.full_reload_interval = 300ms;
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

  // Waits on the loop (the follower runs meanwhile) until `cond` holds or `within` passes.
  static asio::awaitable<bool> until(std::function<bool()> cond, std::chrono::milliseconds within) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    const auto deadline = clock::now() + within;
    while (!cond()) {
      if (clock::now() >= deadline)
        co_return false;
      t.expires_after(5ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    co_return true;
  }

  test::scoped_database db_;
  asio::io_context io_;
  metrics::registry metrics_;
  service_registry registry_;
  std::unique_ptr<store::pg_pool> pool_;
  std::unique_ptr<service_store> store_;
};

TEST_F(follower_test, store_round_trips_a_service_and_its_schedule) {
  run([&]() -> asio::awaitable<void> {
    auto s = named("payments");
    auto put = co_await store_->put(s, clock::now() + 5s);
    EXPECT_FALSE(put.status) << put.status.message;
    EXPECT_TRUE(put.created);
    put = co_await store_->put(s, clock::now() + 5s);
    EXPECT_FALSE(put.created);

    schedule traffic;
    traffic.flavours = {{"green", 70}, {"std", 30}};
    traffic.valid_until = std::chrono::system_clock::time_point(std::chrono::seconds(1900000000));
    const auto set = co_await store_->set_schedule("payments", traffic, clock::now() + 5s);
    EXPECT_TRUE(set.found);
    EXPECT_FALSE((co_await store_->set_schedule("nothing", traffic, clock::now() + 5s)).found);

    auto loaded = co_await store_->load("payments", clock::now() + 5s);
    if (!loaded.found) {
      ADD_FAILURE() << "not loaded";
      co_return;
    }
    EXPECT_EQ(loaded.found->traffic, std::optional<schedule>(traffic));
    EXPECT_EQ(loaded.found->flavours, s.flavours);
    EXPECT_EQ(loaded.found->source, service_source::api);

    // A PUT without a schedule keeps it.
    put = co_await store_->put(named("payments", 5s), clock::now() + 5s);
    EXPECT_TRUE(put.stored && put.stored->timeout == 5s && put.stored->traffic.has_value());

    EXPECT_TRUE((co_await store_->remove("payments", clock::now() + 5s)).found);
    EXPECT_FALSE((co_await store_->remove("payments", clock::now() + 5s)).found);
    EXPECT_FALSE((co_await store_->load("payments", clock::now() + 5s)).found);
  });
}

TEST_F(follower_test, a_lost_notification_is_made_good_by_the_full_reload) {
  service_follower follower(io_.get_executor(), registry_, service_defaults{}, options(), metrics_);
  asio::co_spawn(io_, follower.run(), asio::detached);
  run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return follower.mode() == follower_mode::following; }, 5s));

    // With notifications: seen at once, by a one-service reload.
    const auto full_before = follower.full_reloads();
    co_await store_->put(named("notified"), clock::now() + 5s);
    EXPECT_TRUE(co_await until([&] { return registry_.find("notified") != nullptr; }, 200ms));

    // Without (trigger off): only the periodic full reload brings the row.
    test::pg_session pg(db_.url());
    pg.query("ALTER TABLE sluice_services DISABLE TRIGGER sluice_services_changed");
    pg.query(
        "INSERT INTO sluice_services (name, spec) VALUES ('silent', "
        "'{\"flavours\":[{\"name\":\"std\"}]}')");
    pg.query("DELETE FROM sluice_services WHERE name = 'notified'");
    EXPECT_TRUE(co_await until(
        [&] {
          return registry_.find("silent") != nullptr && registry_.find("notified") == nullptr;
        },
        2s));
    EXPECT_GT(follower.full_reloads(), full_before);
    follower.stop();
    co_await follower.wait_stopped();
  });
}

TEST_F(follower_test, stop_ends_the_follower_while_postgresql_is_unreachable) {
  auto o = options();
  o.connection.conninfo = "host=127.0.0.1 port=1 connect_timeout=10";
  service_follower follower(io_.get_executor(), registry_, service_defaults{}, o, metrics_);
  asio::co_spawn(io_, follower.run(), asio::detached);
  run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await until([&] { return follower.mode() == follower_mode::backing_off; }, 5s));
    const auto start = clock::now();
    follower.stop();
    co_await follower.wait_stopped();
    EXPECT_LT(clock::now() - start, 1s);
    EXPECT_EQ(follower.mode(), follower_mode::stopped);
  });
}

}  // namespace
}  // namespace sluice::services
