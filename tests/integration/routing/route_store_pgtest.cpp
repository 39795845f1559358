// route_store on a real PostgreSQL: each change's outcome, the registry version bumped only by
// real changes, one event per change with its before/after, versions gap-free and in commit
// order under concurrent changes from two pools, and the notification after the commit.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/routing/route_store.hpp"
#include "sluice/store/migrations.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "sluice_test/pg.hpp"

namespace sluice::routing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

route_key key(const std::string& service, const std::string& version = "v1") {
  return {"acme", service, "prod", version};
}

class route_store_test : public ::testing::Test {
 protected:
  route_store_test() {
    pool_ = make_pool();
    run([&]() -> asio::awaitable<void> {
      const auto r = co_await store::apply_migrations(*pool_, soon());
      EXPECT_FALSE(r.ec) << r.message;
    });
    store_ = std::make_unique<route_store>(*pool_);
  }

  std::unique_ptr<store::pg_pool> make_pool() {
    store::pool_options o;
    o.connection.conninfo = db_.url();
    o.max_connections = 4;
    return std::make_unique<store::pg_pool>(io_.get_executor(), o);
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

  std::string scalar(const std::string& sql) { return pg_.scalar(sql); }

  static store::clock::time_point soon() { return clock::now() + 10s; }

  test::scoped_database db_;
  test::pg_session pg_{db_.url()};
  asio::io_context io_;
  std::unique_ptr<store::pg_pool> pool_;
  std::unique_ptr<route_store> store_;
};

TEST_F(route_store_test, create_answers_done_then_conflict_and_bumps_once) {
  run([&]() -> asio::awaitable<void> {
    const auto created =
        co_await store_->create(key("billing"), "http://billing:8080/", "10.0.0.1", soon());
    EXPECT_FALSE(created.status) << created.status.message;
    EXPECT_EQ(created.outcome, change_outcome::done);
    EXPECT_EQ(created.registry_version, 1);
    if (!created.stored) {
      ADD_FAILURE() << "no route";
      co_return;
    }
    const route& r = *created.stored;
    EXPECT_GT(r.id, 0);
    EXPECT_EQ(r.key, key("billing"));
    EXPECT_EQ(r.url, "http://billing:8080/");
    EXPECT_TRUE(r.is_active);
    EXPECT_EQ(r.registry_version, 1);
    EXPECT_EQ(r.created_at, r.updated_at);
    EXPECT_LT(std::chrono::system_clock::now() - r.created_at, 1min);

    const auto again = co_await store_->create(key("billing"), "http://other/", "10.0.0.1", soon());
    EXPECT_FALSE(again.status);
    EXPECT_EQ(again.outcome, change_outcome::conflict);
    EXPECT_FALSE(again.stored);
    EXPECT_EQ(again.registry_version, 1);

    const auto [st, version] = co_await store_->current_version(soon());
    EXPECT_FALSE(st);
    EXPECT_EQ(version, 1);
  });
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_route_events"), "1");
  EXPECT_EQ(scalar("SELECT url FROM sluice_routes"), "http://billing:8080/");
  EXPECT_EQ(scalar("SELECT action || ' ' || actor || ' ' || (before IS NULL)::text || ' ' || "
                   "(after->>'url') FROM sluice_route_events"),
            "created 10.0.0.1 true http://billing:8080/");
}

TEST_F(route_store_test, update_set_active_and_remove_answer_each_outcome) {
  run([&]() -> asio::awaitable<void> {
    const auto created = co_await store_->create(key("billing"), "http://a/", "x", soon());
    const auto updated = co_await store_->update_url(key("billing"), "http://b/", "y", soon());
    EXPECT_EQ(updated.outcome, change_outcome::done);
    EXPECT_EQ(updated.registry_version, 2);
    EXPECT_TRUE(updated.stored && updated.stored->url == "http://b/" &&
                updated.stored->registry_version == 2 &&
                updated.stored->created_at == created.stored->created_at &&
                updated.stored->updated_at > created.stored->updated_at);
    // The same url again changes nothing: done, no version, no event.
    const auto same = co_await store_->update_url(key("billing"), "http://b/", "y", soon());
    EXPECT_EQ(same.outcome, change_outcome::done);
    EXPECT_EQ(same.registry_version, 2);
    EXPECT_TRUE(same.stored && same.stored->url == "http://b/");
    EXPECT_EQ((co_await store_->update_url(key("nothing"), "http://b/", "y", soon())).outcome,
              change_outcome::not_found);

    const auto off = co_await store_->set_active(key("billing"), false, "z", soon());
    EXPECT_EQ(off.outcome, change_outcome::done);
    EXPECT_EQ(off.registry_version, 3);
    EXPECT_TRUE(off.stored && !off.stored->is_active);
    const auto off_again = co_await store_->set_active(key("billing"), false, "z", soon());
    EXPECT_EQ(off_again.outcome, change_outcome::done);
    EXPECT_EQ(off_again.registry_version, 3);
    EXPECT_TRUE(off_again.stored && !off_again.stored->is_active &&
                off_again.stored->registry_version == 3);
    const auto on = co_await store_->set_active(key("billing"), true, "z", soon());
    EXPECT_EQ(on.registry_version, 4);
    EXPECT_TRUE(on.stored && on.stored->is_active);
    EXPECT_EQ((co_await store_->set_active(key("nothing"), true, "z", soon())).outcome,
              change_outcome::not_found);

    const auto removed = co_await store_->remove(key("billing"), "w", soon());
    EXPECT_EQ(removed.outcome, change_outcome::done);
    EXPECT_EQ(removed.registry_version, 5);
    // A delete hands back what it deleted.
    EXPECT_TRUE(removed.stored && removed.stored->is_active &&
                removed.stored->registry_version == 4);
    const auto gone = co_await store_->remove(key("billing"), "w", soon());
    EXPECT_EQ(gone.outcome, change_outcome::not_found);
    EXPECT_EQ(gone.registry_version, 5);

    const auto events = co_await store_->events_since(0, 100, soon());
    EXPECT_FALSE(events.status);
    if (events.events.size() != 5u) {
      ADD_FAILURE() << events.events.size() << " events";
      co_return;
    }
    const std::vector<std::string> actions{"created", "updated", "deactivated", "activated",
                                           "deleted"};
    for (std::size_t i = 0; i < 5; ++i) {
      const auto& e = events.events[i];
      EXPECT_EQ(e.action, actions[i]);
      EXPECT_EQ(e.registry_version, static_cast<std::int64_t>(i + 1));
      EXPECT_EQ(e.key, key("billing"));
      // Each change's before is the previous change's after.
      if (i > 0) {
        EXPECT_EQ(e.before, events.events[i - 1].after) << e.action;
      }
      if (e.after) {
        EXPECT_EQ(e.after->registry_version, e.registry_version);
      }
    }
    EXPECT_FALSE(events.events[0].before);
    EXPECT_EQ(events.events[0].after, created.stored);
    EXPECT_EQ(events.events[1].after, updated.stored);
    EXPECT_EQ(events.events[1].actor, "y");
    EXPECT_FALSE(events.events[4].after);
    EXPECT_EQ(events.events[4].before, on.stored);
    EXPECT_EQ(events.events[4].before, removed.stored);

    const auto later = co_await store_->events_since(3, 1, soon());
    EXPECT_TRUE(later.events.size() == 1u && later.events[0].registry_version == 4);
  });
}

TEST_F(route_store_test, lookup_reports_the_version_it_read_with_the_row) {
  run([&]() -> asio::awaitable<void> {
    const auto none = co_await store_->lookup(key("billing"), soon());
    EXPECT_FALSE(none.status);
    EXPECT_FALSE(none.found);
    EXPECT_EQ(none.registry_version, 0);
    co_await store_->create(key("billing"), "http://a/", "x", soon());
    co_await store_->create(key("search"), "http://s/", "x", soon());
    co_await store_->set_active(key("billing"), false, "x", soon());
    const auto found = co_await store_->lookup(key("billing"), soon());
    EXPECT_EQ(found.registry_version, 3);
    EXPECT_TRUE(found.found && !found.found->is_active && found.found->url == "http://a/" &&
                found.found->registry_version == 3);
    const auto other = co_await store_->lookup(key("search"), soon());
    EXPECT_EQ(other.registry_version, 3);
    EXPECT_TRUE(other.found && other.found->registry_version == 2);
  });
}

TEST_F(route_store_test, list_filters_and_pages_by_key) {
  run([&]() -> asio::awaitable<void> {
    const std::vector<std::string> services{"c", "a", "b"};
    for (const auto& s : services) {
      co_await store_->create(key(s, "v1"), "http://h/", "x", soon());
      co_await store_->create(key(s, "v2"), "http://h/", "x", soon());
    }
    const route_key other_tenant{"other", "a", "prod", "v1"};
    co_await store_->create(other_tenant, "http://h/", "x", soon());
    co_await store_->set_active(key("b", "v2"), false, "x", soon());

    const auto all = co_await store_->list({}, std::nullopt, 100, soon());
    EXPECT_FALSE(all.status);
    std::vector<std::string> names;
    for (const auto& r : all.routes)
      names.push_back(to_string(r.key));
    EXPECT_EQ(names, (std::vector<std::string>{"acme/a/prod/v1", "acme/a/prod/v2", "acme/b/prod/v1",
                                               "acme/b/prod/v2", "acme/c/prod/v1", "acme/c/prod/v2",
                                               "other/a/prod/v1"}));
    const auto page = co_await store_->list({}, key("b", "v1"), 2, soon());
    EXPECT_TRUE(page.routes.size() == 2u && page.routes[0].key == key("b", "v2") &&
                page.routes[1].key == key("c", "v1"));
    route_filter f;
    f.tenant = "acme";
    f.version = "v2";
    f.active = true;
    const auto filtered = co_await store_->list(f, std::nullopt, 100, soon());
    EXPECT_EQ(filtered.routes.size(), 2u);
    route_filter inactive;
    inactive.active = false;
    const auto off = co_await store_->list(inactive, std::nullopt, 100, soon());
    EXPECT_TRUE(off.routes.size() == 1u && off.routes[0].key == key("b", "v2"));
  });
}

TEST_F(route_store_test, list_events_filters_newest_first) {
  std::chrono::system_clock::time_point middle;
  run([&]() -> asio::awaitable<void> {
    co_await store_->create(key("a"), "http://h/", "x", soon());
    co_await store_->create(key("b"), "http://h/", "x", soon());
    const auto b_changed = co_await store_->update_url(key("b"), "http://i/", "x", soon());
    middle = b_changed.stored->updated_at;
    co_await store_->set_active(key("a"), false, "x", soon());
    co_await store_->remove(key("b"), "x", soon());

    const auto all = co_await store_->list_events({}, std::nullopt, 100, soon());
    EXPECT_FALSE(all.status);
    std::vector<std::int64_t> versions;
    for (const auto& e : all.events)
      versions.push_back(e.registry_version);
    EXPECT_EQ(versions, (std::vector<std::int64_t>{5, 4, 3, 2, 1}));

    event_filter of_b;
    of_b.service = "b";
    const auto b = co_await store_->list_events(of_b, std::nullopt, 100, soon());
    EXPECT_EQ(b.events.size(), 3u);
    const auto b_page = co_await store_->list_events(of_b, 5, 1, soon());
    EXPECT_TRUE(b_page.events.size() == 1u && b_page.events[0].action == "updated");

    event_filter created;
    created.action = "created";
    EXPECT_EQ((co_await store_->list_events(created, std::nullopt, 100, soon())).events.size(), 2u);

    // start inclusive, end exclusive: the update's own time is in [middle, ...) only.
    event_filter from;
    from.start_time = middle;
    const auto after = co_await store_->list_events(from, std::nullopt, 100, soon());
    EXPECT_EQ(after.events.size(), 3u);
    event_filter until;
    until.end_time = middle;
    const auto before = co_await store_->list_events(until, std::nullopt, 100, soon());
    EXPECT_EQ(before.events.size(), 2u);
  });
}

TEST_F(route_store_test, notification_carries_the_version_and_follows_the_commit) {
  store::pg_connection listener(io_.get_executor());
  run([&]() -> asio::awaitable<void> {
    store::connection_options o;
    o.conninfo = db_.url();
    EXPECT_FALSE(co_await listener.connect(o, soon()));
    EXPECT_FALSE((co_await listener.execute("LISTEN sluice_routes", soon())).ec);

    co_await store_->create(key("a"), "http://h/", "x", soon());
    co_await store_->create(key("a"), "http://h/", "x", soon());            // conflict: no notify
    co_await store_->set_active(key("a"), true, "x", soon());               // no change: no notify
    co_await store_->update_url(key("nothing"), "http://h/", "x", soon());  // not found
    co_await store_->update_url(key("a"), "http://i/", "x", soon());

    std::vector<std::string> payloads;
    const auto deadline = clock::now() + 5s;
    while (payloads.size() < 2 && clock::now() < deadline) {
      if (co_await listener.wait_notification(deadline))
        break;
      for (auto& n : listener.take_notifications()) {
        EXPECT_EQ(n.channel, "sluice_routes");
        payloads.push_back(n.payload);
      }
    }
    EXPECT_EQ(payloads, (std::vector<std::string>{"1", "2"}));
    // Delivered after the commit: the listener's own read sees the change it names.
    const auto seen = co_await route_store::events_since(listener, 1, 10, soon());
    EXPECT_TRUE(seen.events.size() == 1u && seen.events[0].registry_version == 2 &&
                seen.events[0].after && seen.events[0].after->url == "http://i/");
    // No further notification for the no-op changes.
    EXPECT_TRUE(co_await listener.wait_notification(clock::now() + 300ms));
    EXPECT_TRUE(listener.take_notifications().empty());
  });
}

TEST_F(route_store_test, concurrent_changes_from_two_pools_get_gap_free_versions_in_commit_order) {
  auto second_pool = make_pool();
  route_store second(*second_pool);
  store::pg_connection listener(io_.get_executor());
  constexpr int workers_per_pool = 4;
  constexpr int rounds = 15;
  std::vector<std::string> payloads;
  run([&]() -> asio::awaitable<void> {
    store::connection_options o;
    o.conninfo = db_.url();
    EXPECT_FALSE(co_await listener.connect(o, soon()));
    EXPECT_FALSE((co_await listener.execute("LISTEN sluice_routes", soon())).ec);

    int running = 0;
    int done_count = 0;
    // Every worker changes the same three keys: creates race creates, updates race deletes.
    const auto worker = [&](route_store& s, int id) -> asio::awaitable<void> {
      for (int i = 0; i < rounds; ++i) {
        const auto k = key("svc" + std::to_string((id + i) % 3));
        const std::string url = "http://w" + std::to_string(id) + "/" + std::to_string(i);
        switch (i % 4) {
          case 0:
            co_await s.create(k, url, "w" + std::to_string(id), soon());
            break;
          case 1:
            co_await s.update_url(k, url, "w" + std::to_string(id), soon());
            break;
          case 2:
            co_await s.set_active(k, i % 8 == 2, "w" + std::to_string(id), soon());
            break;
          default:
            co_await s.remove(k, "w" + std::to_string(id), soon());
            break;
        }
      }
      ++done_count;
    };
    for (int w = 0; w < workers_per_pool * 2; ++w) {
      ++running;
      asio::co_spawn(io_, worker(w % 2 ? second : *store_, w), asio::detached);
    }
    const auto deadline = clock::now() + 60s;
    // wait_notification returns at once while notifications are queued: take them each time.
    while (done_count < running && clock::now() < deadline) {
      co_await listener.wait_notification(clock::now() + 50ms);
      for (auto& n : listener.take_notifications())
        payloads.push_back(n.payload);
    }
    EXPECT_EQ(done_count, running);
    const auto [st, version] = co_await store_->current_version(soon());
    while (static_cast<std::int64_t>(payloads.size()) < version && clock::now() < deadline) {
      co_await listener.wait_notification(clock::now() + 200ms);
      for (auto& n : listener.take_notifications())
        payloads.push_back(n.payload);
    }
  });
  const auto version = std::stoll(scalar("SELECT version FROM sluice_route_registry"));
  EXPECT_GT(version, 10);
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_route_events"), std::to_string(version));
  EXPECT_EQ(scalar("SELECT min(registry_version) || '-' || max(registry_version) FROM "
                   "sluice_route_events"),
            "1-" + std::to_string(version));
  // PostgreSQL delivers notifications in commit order: 1, 2, 3, ... proves versions follow it.
  std::vector<std::string> expected;
  for (std::int64_t v = 1; v <= version; ++v)
    expected.push_back(std::to_string(v));
  EXPECT_EQ(payloads, expected);
  // Event times grow with versions (taken under the registry lock).
  EXPECT_EQ(scalar("SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY "
                   "registry_version) AS back FROM sluice_route_events) x WHERE back"),
            "0");

  // Per key, each event's before is the previous event's after, and the row carries its last
  // event's version: no change was computed from a stale row.
  run([&]() -> asio::awaitable<void> {
    const auto events = co_await store_->events_since(0, 10'000, soon());
    std::map<route_key, std::optional<route>> last;
    for (const auto& e : events.events) {
      const auto it = last.find(e.key);
      const std::optional<route> previous = it == last.end() ? std::nullopt : it->second;
      EXPECT_EQ(e.before, previous) << "version " << e.registry_version;
      last[e.key] = e.after;
    }
    for (const auto& [k, after] : last) {
      const auto now = co_await store_->lookup(k, soon());
      EXPECT_EQ(now.found, after) << to_string(k);
    }
  });
}

}  // namespace
}  // namespace sluice::routing
