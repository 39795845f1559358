// route_follower's catch-up against fake reads (the listen follower around it is the services'
// and subscriptions', tested there): the first sync starts from the registry's version, later
// ones replay the events after the applied version in pages, a long one empties the cache, a
// failed read keeps what was applied.
#include "sluice/routing/route_follower.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace sluice::routing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

route_key key(const std::string& service) {
  return {"acme", service, "prod", "v1"};
}

route active(const route_key& k, const std::string& url) {
  route r;
  r.key = k;
  r.url = url;
  return r;
}

struct fake_registry {
  std::int64_t version = 0;
  std::vector<route_event> events;
  int version_reads = 0;
  std::vector<std::int64_t> pages_after;  // after_version of each events read
  bool fail_events = false;

  void change(const route_key& k, std::optional<route> after) {
    route_event e;
    e.registry_version = ++version;
    e.key = k;
    e.action = after ? "updated" : "deleted";
    e.after = std::move(after);
    events.push_back(e);
  }

  route_follower_reads reads() {
    route_follower_reads r;
    r.current_version = [this](store::pg_connection&, store::clock::time_point)
        -> asio::awaitable<std::pair<store::statement_status, std::int64_t>> {
      ++version_reads;
      co_return std::pair{store::statement_status{}, version};
    };
    r.events_since = [this](store::pg_connection&, std::int64_t after, std::size_t limit,
                            store::clock::time_point) -> asio::awaitable<events_result> {
      pages_after.push_back(after);
      events_result out;
      if (fail_events) {
        out.status.ec = std::make_error_code(std::errc::connection_reset);
        out.status.message = "connection reset";
        co_return out;
      }
      for (const auto& e : events) {
        if (e.registry_version > after && out.events.size() < limit)
          out.events.push_back(e);
      }
      co_return out;
    };
    return r;
  }
};

class route_follower_test : public ::testing::Test {
 protected:
  route_follower_test()
      : resolver_(
            io_.get_executor(),
            [this](const route_key& k,
                   std::chrono::steady_clock::time_point) -> asio::awaitable<lookup_result> {
              lookup_result r;
              r.registry_version = registry_.version;
              if (const auto it = rows_.find(k.service); it != rows_.end())
                r.found = it->second;
              co_return r;
            },
            {}, metrics_),
        conn_(io_.get_executor()) {
    make({});
  }

  void make(route_follower_options o) {
    follower_ = std::make_unique<route_follower>(io_.get_executor(), resolver_, o, metrics_,
                                                 registry_.reads());
  }

  template <typename T>
  T run(asio::awaitable<T> a) {
    std::optional<T> out;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { out = co_await std::move(a); }, asio::detached);
    io_.restart();
    io_.run();
    EXPECT_TRUE(out.has_value());
    return out.value_or(T{});
  }
  bool catch_up(std::optional<std::int64_t> notified = {}) {
    return run(follower_->catch_up(conn_, store::clock::now() + 5s, notified));
  }
  resolve_outcome resolve(const std::string& service) {
    return run(resolver_.resolve(key(service)));
  }
  double registry_gauge() {
    return metrics_.add_gauge("sluice_route_registry_version", "").get().value();
  }

  asio::io_context io_;
  metrics::registry metrics_;
  fake_registry registry_;
  std::map<std::string, route> rows_;
  route_resolver resolver_;
  store::pg_connection conn_;
  std::unique_ptr<route_follower> follower_;
};

TEST_F(route_follower_test, the_first_sync_starts_from_the_registry_version_and_empties_the_cache) {
  rows_["a"] = active(key("a"), "http://a/");
  registry_.change(key("a"), rows_["a"]);
  registry_.change(key("a"), rows_["a"]);
  resolve("a");
  ASSERT_EQ(resolver_.cache().size(), 1u);
  EXPECT_TRUE(catch_up());
  EXPECT_EQ(follower_->status().applied, 2);
  EXPECT_EQ(registry_gauge(), 2);
  EXPECT_TRUE(registry_.pages_after.empty()) << "history is not replayed";
  EXPECT_EQ(resolver_.cache().size(), 0u);
  EXPECT_EQ(follower_->status().events_applied, 0u);
}

TEST_F(route_follower_test, later_syncs_apply_the_events_after_the_applied_version) {
  rows_["a"] = active(key("a"), "http://a/");
  EXPECT_TRUE(catch_up());
  EXPECT_EQ(resolve("a").url, "http://a/");
  registry_.change(key("a"), active(key("a"), "http://new/"));
  registry_.change(key("b"), active(key("b"), "http://b/"));
  EXPECT_TRUE(catch_up(2));
  EXPECT_EQ(follower_->status().applied, 2);
  EXPECT_EQ(follower_->status().events_applied, 2u);
  EXPECT_TRUE(follower_->status().last_event_at.has_value());
  const auto a = resolve("a");
  EXPECT_EQ(a.result, resolve_result::hit) << "re-warmed from the event";
  EXPECT_EQ(a.url, "http://new/");
  EXPECT_EQ(resolver_.cache().size(), 1u) << "b was not cached here, so it is not added";
  registry_.change(key("a"), std::nullopt);
  EXPECT_TRUE(catch_up());
  EXPECT_EQ(resolve("a").result, resolve_result::negative_hit);
}

TEST_F(route_follower_test, a_notification_already_applied_reads_nothing) {
  registry_.change(key("a"), std::nullopt);
  EXPECT_TRUE(catch_up());
  const int reads = registry_.version_reads;
  EXPECT_TRUE(catch_up(1));
  EXPECT_EQ(registry_.version_reads, reads);
}

TEST_F(route_follower_test, a_catch_up_reads_in_pages) {
  route_follower_options o;
  o.page = 2;
  make(o);
  EXPECT_TRUE(catch_up());
  for (int i = 0; i < 5; ++i)
    registry_.change(key("a"), active(key("a"), "http://a" + std::to_string(i) + "/"));
  EXPECT_TRUE(catch_up());
  EXPECT_EQ(registry_.pages_after, (std::vector<std::int64_t>{0, 2, 4}));
  EXPECT_EQ(follower_->status().applied, 5);
}

TEST_F(route_follower_test, a_catch_up_longer_than_the_bound_empties_the_cache) {
  route_follower_options o;
  o.max_catch_up = 3;
  make(o);
  rows_["a"] = active(key("a"), "http://a/");
  EXPECT_TRUE(catch_up());
  resolve("a");
  for (int i = 0; i < 4; ++i)
    registry_.change(key("x"), std::nullopt);
  EXPECT_TRUE(catch_up());
  EXPECT_TRUE(registry_.pages_after.empty()) << "not replayed";
  EXPECT_EQ(resolver_.cache().size(), 0u);
  EXPECT_EQ(follower_->status().applied, 4);
  EXPECT_EQ(metrics_.add_counter("sluice_route_cache_clears_total", "").get().value(), 2);
}

TEST_F(route_follower_test, a_failed_read_keeps_what_was_applied_and_the_next_sync_goes_on) {
  EXPECT_TRUE(catch_up());
  registry_.change(key("a"), std::nullopt);
  registry_.fail_events = true;
  EXPECT_FALSE(catch_up());
  EXPECT_EQ(follower_->status().applied, 0);
  registry_.fail_events = false;
  EXPECT_TRUE(catch_up());
  EXPECT_EQ(follower_->status().applied, 1);
}

TEST_F(route_follower_test, a_registry_behind_the_applied_version_empties_the_cache) {
  registry_.change(key("a"), std::nullopt);
  registry_.change(key("a"), std::nullopt);
  EXPECT_TRUE(catch_up());
  registry_.version = 0;
  registry_.events.clear();
  EXPECT_TRUE(catch_up());
  EXPECT_EQ(follower_->status().applied, 0);
}

TEST_F(route_follower_test, status_is_not_connected_before_run) {
  EXPECT_FALSE(follower_->status().connected);
  EXPECT_FALSE(follower_->status().applied.has_value());
}

}  // namespace
}  // namespace sluice::routing
