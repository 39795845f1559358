// route_resolver against a fake store (a lookup the test answers when it likes) and a fake
// clock: single flight, hits, negatives, stale, unavailable, eviction, the bounds, and an
// invalidation racing a lookup in flight.
#include "sluice/routing/route_resolver.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

namespace sluice::routing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = route_resolver::clock;

route_key key(const std::string& service) {
  return {"acme", service, "prod", "v1"};
}

route active(const route_key& k, const std::string& url) {
  route r;
  r.key = k;
  r.url = url;
  return r;
}

// The store: every lookup is counted and waits until the test opens the gate (or answers at
// once when it is open), then answers with what `answer` says for the key.
struct fake_store {
  int calls = 0;
  bool open = true;
  bool fail = false;
  bool throws = false;
  std::int64_t version = 1;
  std::map<std::string, route> rows;  // by service
  async_event gate;

  asio::awaitable<lookup_result> lookup(const route_key& k) {
    ++calls;
    while (!open)
      co_await gate.wait_until(async_event::clock::time_point::max());
    if (throws)
      throw std::runtime_error("boom");
    lookup_result r;
    if (fail) {
      r.status.ec = std::make_error_code(std::errc::connection_refused);
      r.status.message = "connection refused";
      co_return r;
    }
    r.registry_version = version;
    if (const auto it = rows.find(k.service); it != rows.end())
      r.found = it->second;
    co_return r;
  }
  void release() {
    open = true;
    gate.notify_all();
  }
};

class route_resolver_test : public ::testing::Test {
 protected:
  route_resolver_test() { make({}); }

  void make(route_resolver_options o) {
    o.cache.positive_ttl = 60s;
    o.cache.negative_ttl = 10s;
    o.cache.stale_max = 300s;
    if (o.cache.max_entries == 100'000)
      o.cache.max_entries = 100;
    resolver_.reset();
    resolver_ = std::make_unique<route_resolver>(
        io_.get_executor(),
        [this](const route_key& k, clock::time_point) { return store_.lookup(k); }, o, metrics_,
        [this] { return now_; });
  }

  // Starts a resolve; its outcome lands in the returned slot once it finishes.
  std::shared_ptr<std::optional<resolve_outcome>> start(route_key k) {
    auto slot = std::make_shared<std::optional<resolve_outcome>>();
    asio::co_spawn(
        io_, [this, k, slot]() -> asio::awaitable<void> { *slot = co_await resolver_->resolve(k); },
        asio::detached);
    return slot;
  }
  void run() {
    io_.restart();
    io_.poll();
  }
  resolve_outcome resolve(route_key k) {
    auto slot = start(std::move(k));
    run();
    EXPECT_TRUE(slot->has_value()) << "resolve did not finish";
    return slot->value_or(resolve_outcome{});
  }
  double total(const std::string& result) {
    return metrics_.add_counter("sluice_route_resolve_total", "", {"result"})
        .with({result})
        .value();
  }

  asio::io_context io_;
  metrics::registry metrics_;
  fake_store store_;
  clock::time_point now_ = clock::time_point{} + 1000h;
  std::unique_ptr<route_resolver> resolver_;
};

TEST_F(route_resolver_test, a_thousand_concurrent_resolves_of_a_cold_key_make_one_lookup) {
  store_.rows["a"] = active(key("a"), "http://a/");
  store_.open = false;
  std::vector<std::shared_ptr<std::optional<resolve_outcome>>> slots;
  for (int i = 0; i < 1000; ++i)
    slots.push_back(start(key("a")));
  run();
  EXPECT_EQ(store_.calls, 1);
  EXPECT_EQ(resolver_->waiters(), 1000u);
  EXPECT_EQ(resolver_->lookups_in_flight(), 1u);
  store_.release();
  run();
  for (const auto& s : slots) {
    ASSERT_TRUE(s->has_value());
    EXPECT_EQ((*s)->result, resolve_result::miss);
    EXPECT_EQ((*s)->url, "http://a/");
  }
  EXPECT_EQ(store_.calls, 1);
  EXPECT_EQ(resolver_->waiters(), 0u);
  EXPECT_EQ(total("miss"), 1000);
}

// A worker's requests are cancelled (terminal) when it stops or loses its channel; a resolve
// cancelled while waiting for a lookup must give its waiter place back, or enough of them would
// leave every later miss "too many resolves waiting" for good.
TEST_F(route_resolver_test, a_cancelled_resolve_gives_its_waiter_place_back) {
  route_resolver_options o;
  o.max_waiters = 1;
  make(o);
  store_.rows["a"] = active(key("a"), "http://a/");
  store_.open = false;
  asio::cancellation_signal cancel;
  bool ended = false;
  asio::co_spawn(
      io_, [this]() -> asio::awaitable<void> { co_await resolver_->resolve(key("a")); },
      asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr) { ended = true; }));
  run();
  EXPECT_EQ(resolver_->waiters(), 1u);
  cancel.emit(asio::cancellation_type::terminal);
  run();
  EXPECT_TRUE(ended);
  EXPECT_EQ(resolver_->waiters(), 0u);
  store_.release();
  run();
  // The place is free again: a resolve waits for its lookup instead of being refused.
  now_ += 120s;
  store_.open = false;
  auto slot = start(key("a"));
  run();
  EXPECT_EQ(resolver_->waiters(), 1u);
  store_.release();
  run();
  ASSERT_TRUE(slot->has_value());
  EXPECT_EQ((*slot)->result, resolve_result::miss);
}

TEST_F(route_resolver_test, a_cached_route_is_a_hit_without_a_lookup_until_its_ttl) {
  store_.rows["a"] = active(key("a"), "http://a/");
  EXPECT_EQ(resolve(key("a")).result, resolve_result::miss);
  const auto hit = resolve(key("a"));
  EXPECT_EQ(hit.result, resolve_result::hit);
  EXPECT_EQ(hit.url, "http://a/");
  const auto inline_hit = resolver_->resolve_cached(key("a"));
  ASSERT_TRUE(inline_hit);
  EXPECT_EQ(inline_hit->result, resolve_result::hit);
  EXPECT_EQ(store_.calls, 1);
  EXPECT_EQ(total("hit"), 2);
  now_ += 60s;
  EXPECT_FALSE(resolver_->resolve_cached(key("a"))) << "expired: resolve() must ask the store";
  EXPECT_EQ(resolve(key("a")).result, resolve_result::miss);
  EXPECT_EQ(store_.calls, 2);
}

TEST_F(route_resolver_test, a_missing_route_is_a_negative_hit_until_the_negative_ttl) {
  const auto first = resolve(key("nope"));
  EXPECT_EQ(first.result, resolve_result::miss);
  EXPECT_EQ(first.url, std::nullopt);
  EXPECT_EQ(resolve(key("nope")).result, resolve_result::negative_hit);
  store_.fail = true;
  EXPECT_EQ(resolve(key("nope")).result, resolve_result::negative_hit)
      << "a known-missing key stays missing while the store is down";
  EXPECT_EQ(store_.calls, 1);
  now_ += 10s;
  EXPECT_EQ(resolve(key("nope")).result, resolve_result::unavailable);
  EXPECT_EQ(total("negative_hit"), 2);
}

TEST_F(route_resolver_test, an_expired_route_is_stale_while_the_store_fails_within_the_bound) {
  store_.rows["a"] = active(key("a"), "http://a/");
  resolve(key("a"));
  store_.fail = true;
  now_ += 61s;
  const auto stale = resolve(key("a"));
  EXPECT_EQ(stale.result, resolve_result::stale);
  EXPECT_EQ(stale.url, "http://a/");
  now_ += 298s;
  EXPECT_EQ(resolve(key("a")).result, resolve_result::stale);
  now_ += 1s;  // 60 s TTL + 300 s
  const auto gone = resolve(key("a"));
  EXPECT_EQ(gone.result, resolve_result::unavailable);
  EXPECT_EQ(gone.url, std::nullopt);
  EXPECT_EQ(total("stale"), 2);
  EXPECT_EQ(total("unavailable"), 1);
}

TEST_F(route_resolver_test, a_cold_key_is_unavailable_while_the_store_fails) {
  store_.fail = true;
  const auto out = resolve(key("a"));
  EXPECT_EQ(out.result, resolve_result::unavailable);
  EXPECT_EQ(out.error, "connection refused");
  EXPECT_EQ(resolver_->cache().size(), 0u);
  EXPECT_EQ(resolver_->cache().filling(), 0u);
}

TEST_F(route_resolver_test, a_lookup_that_throws_answers_every_waiter_unavailable) {
  store_.throws = true;
  store_.open = false;
  auto a = start(key("a"));
  auto b = start(key("a"));
  run();
  store_.release();
  run();
  ASSERT_TRUE(a->has_value() && b->has_value());
  EXPECT_EQ((*a)->result, resolve_result::unavailable);
  EXPECT_EQ((*b)->error, "boom");
  EXPECT_EQ(resolver_->lookups_in_flight(), 0u);
}

TEST_F(route_resolver_test, the_least_recently_used_route_is_evicted_at_the_bound) {
  route_resolver_options o;
  o.cache.max_entries = 2;
  make(o);
  for (const char* s : {"a", "b", "c"})
    store_.rows[s] = active(key(s), std::string("http://") + s + "/");
  resolve(key("a"));
  resolve(key("b"));
  resolve(key("c"));
  EXPECT_EQ(resolver_->cache().size(), 2u);
  EXPECT_EQ(metrics_.add_gauge("sluice_route_cache_entries", "").get().value(), 2);
  EXPECT_EQ(resolve(key("c")).result, resolve_result::hit);
  EXPECT_EQ(resolve(key("a")).result, resolve_result::miss) << "a was evicted";
  EXPECT_EQ(store_.calls, 4);
}

TEST_F(route_resolver_test, a_cold_key_beyond_the_in_flight_bound_is_not_looked_up) {
  route_resolver_options o;
  o.max_inflight_keys = 1;
  make(o);
  store_.rows["a"] = active(key("a"), "http://a/");
  store_.open = false;
  auto a = start(key("a"));
  auto a2 = start(key("a"));
  auto b = start(key("b"));
  run();
  ASSERT_TRUE(b->has_value());
  EXPECT_EQ((*b)->result, resolve_result::unavailable) << "the bound answers at once";
  EXPECT_NE((*b)->error.find("too many route lookups"), std::string::npos);
  EXPECT_FALSE(a2->has_value()) << "joining a key in flight is within the bound";
  store_.release();
  run();
  EXPECT_EQ((*a2)->result, resolve_result::miss);
  EXPECT_EQ(store_.calls, 1);
}

TEST_F(route_resolver_test, a_resolve_beyond_the_waiter_bound_is_unavailable_or_stale) {
  route_resolver_options o;
  o.max_waiters = 2;
  make(o);
  store_.rows["a"] = active(key("a"), "http://a/");
  resolve(key("a"));
  now_ += 61s;  // expired, stale-capable
  store_.open = false;
  auto w1 = start(key("a"));
  auto w2 = start(key("a"));
  auto over = start(key("a"));
  auto cold = start(key("b"));
  run();
  ASSERT_TRUE(over->has_value() && cold->has_value());
  EXPECT_EQ((*over)->result, resolve_result::stale);
  EXPECT_EQ((*over)->url, "http://a/");
  EXPECT_EQ((*cold)->result, resolve_result::unavailable);
  store_.release();
  run();
  EXPECT_EQ((*w1)->result, resolve_result::miss);
  EXPECT_EQ((*w2)->url, "http://a/");
}

TEST_F(route_resolver_test, a_change_applied_during_a_lookup_wins_over_its_older_answer) {
  store_.rows["a"] = active(key("a"), "http://old/");
  store_.version = 4;
  store_.open = false;
  auto waiting = start(key("a"));
  run();
  // The follower applies version 5 while the lookup (snapshot 4) is in flight.
  route_event e;
  e.registry_version = 5;
  e.action = "updated";
  e.key = key("a");
  e.after = active(key("a"), "http://new/");
  resolver_->apply(e);
  store_.release();
  run();
  ASSERT_TRUE(waiting->has_value());
  EXPECT_EQ((*waiting)->url, "http://new/");
  EXPECT_EQ(resolve(key("a")).url, "http://new/");
  EXPECT_EQ(resolve(key("a")).result, resolve_result::hit);
  EXPECT_EQ(metrics_.add_counter("sluice_route_invalidations_total", "").get().value(), 1);
}

TEST_F(route_resolver_test, an_invalidation_during_a_lookup_keeps_its_older_answer_out) {
  store_.rows["a"] = active(key("a"), "http://old/");
  store_.version = 4;
  store_.open = false;
  auto waiting = start(key("a"));
  run();
  resolver_->invalidate(key("a"), 5);
  store_.release();
  run();
  EXPECT_EQ((*waiting)->result, resolve_result::miss);
  EXPECT_EQ(resolver_->cache().size(), 0u) << "the read older than the change is not kept";
  store_.version = 5;
  store_.rows["a"] = active(key("a"), "http://new/");
  EXPECT_EQ(resolve(key("a")).url, "http://new/");
}

TEST_F(route_resolver_test, a_deactivation_event_turns_a_hit_into_a_negative_hit) {
  store_.rows["a"] = active(key("a"), "http://a/");
  resolve(key("a"));
  route_event e;
  e.registry_version = 2;
  e.action = "deactivated";
  e.key = key("a");
  e.after = active(key("a"), "http://a/");
  e.after->is_active = false;
  resolver_->apply(e);
  EXPECT_EQ(resolve(key("a")).result, resolve_result::negative_hit);
  EXPECT_EQ(store_.calls, 1);
}

TEST_F(route_resolver_test, clear_empties_the_cache) {
  store_.rows["a"] = active(key("a"), "http://a/");
  resolve(key("a"));
  resolver_->clear(100);
  EXPECT_EQ(resolver_->cache().size(), 0u);
  EXPECT_EQ(resolve(key("a")).result, resolve_result::miss);
}

// A worker's handlers are cancelled when their consumer's channel goes (task_group::cancel_all):
// a handler waiting in resolve() must give its waiter slot back, or after max_waiters such
// cancellations every miss of the process answers unavailable.
TEST_F(route_resolver_test, a_resolve_cancelled_while_it_waits_gives_its_waiter_slot_back) {
  store_.rows["a"] = active(key("a"), "http://a/");
  store_.open = false;
  asio::cancellation_signal cancel;
  bool aborted = false;
  asio::co_spawn(
      io_,
      [this, &aborted]() -> asio::awaitable<void> {
        try {
          co_await resolver_->resolve(key("a"));
        } catch (const boost::system::system_error& e) {
          aborted = e.code() == asio::error::operation_aborted;
        }
      },
      asio::bind_cancellation_slot(cancel.slot(), asio::detached));
  run();
  ASSERT_EQ(resolver_->waiters(), 1u);
  cancel.emit(asio::cancellation_type::terminal);
  run();
  EXPECT_TRUE(aborted);
  EXPECT_EQ(resolver_->waiters(), 0u);
  EXPECT_EQ(metrics_.add_gauge("sluice_route_lookup_waiters", "").get().value(), 0);
  store_.release();
  run();
  EXPECT_EQ(resolver_->lookups_in_flight(), 0u);
  EXPECT_EQ(resolve(key("a")).url, "http://a/");
}

// The waiters of a lookup that a change superseded get the change's content, whatever its TTL
// left: here the event re-warmed the key, then the lookup outlived the positive TTL.
TEST_F(route_resolver_test, a_lookup_superseded_by_a_change_answers_the_change_even_past_its_ttl) {
  store_.rows["a"] = active(key("a"), "http://old/");
  store_.version = 4;
  store_.open = false;
  auto waiting = start(key("a"));
  run();
  route_event e;
  e.registry_version = 5;
  e.action = "updated";
  e.key = key("a");
  e.after = active(key("a"), "http://new/");
  resolver_->apply(e);
  now_ += 61s;
  store_.release();
  run();
  ASSERT_TRUE(waiting->has_value());
  EXPECT_EQ((*waiting)->url, "http://new/") << "an active route answered as missing";
}

// A deactivation applied while the lookup was in flight wins over the lookup's older read, for
// its waiters too, also once the negative entry it made has expired (or was never kept).
TEST_F(route_resolver_test, a_lookup_superseded_by_a_deactivation_does_not_answer_its_older_url) {
  for (const bool keep_negatives : {true, false}) {
    SCOPED_TRACE(keep_negatives ? "negative entry expired" : "APP_NEGATIVE_CACHE_TTL=0");
    route_resolver_options o;
    make(o);
    if (!keep_negatives) {
      resolver_.reset();
      o.cache = {60s, 0s, 100, 300s};
      resolver_ = std::make_unique<route_resolver>(
          io_.get_executor(),
          [this](const route_key& k, clock::time_point) { return store_.lookup(k); }, o, metrics_,
          [this] { return now_; });
    }
    store_.rows["a"] = active(key("a"), "http://old/");
    store_.version = 4;
    store_.open = false;
    auto waiting = start(key("a"));
    run();
    route_event e;
    e.registry_version = 5;
    e.action = "deactivated";
    e.key = key("a");
    e.after = active(key("a"), "http://old/");
    e.after->is_active = false;
    resolver_->apply(e);
    if (keep_negatives)
      now_ += 11s;
    store_.release();
    run();
    ASSERT_TRUE(waiting->has_value());
    EXPECT_EQ((*waiting)->url, std::nullopt) << "the read older than the deactivation won";
    EXPECT_EQ((*waiting)->result, resolve_result::miss);
  }
}

TEST_F(route_resolver_test, stop_waits_for_the_flights_and_refuses_new_misses) {
  store_.rows["a"] = active(key("a"), "http://a/");
  store_.open = false;
  auto a = start(key("a"));
  run();
  bool stopped = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await resolver_->stop();
        stopped = true;
      },
      asio::detached);
  run();
  EXPECT_FALSE(stopped);
  EXPECT_EQ(resolve(key("b")).result, resolve_result::unavailable);
  store_.release();
  run();
  EXPECT_TRUE(stopped);
  EXPECT_EQ((*a)->result, resolve_result::miss);
}

}  // namespace
}  // namespace sluice::routing
