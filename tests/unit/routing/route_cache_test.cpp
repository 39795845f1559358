// Every transition of route_cache, driven with a fake clock (each call's `now`).
#include "sluice/routing/route_cache.hpp"

#include <gtest/gtest.h>

namespace sluice::routing {
namespace {

using namespace std::chrono_literals;
using clock = route_cache::clock;

route_key key(const std::string& service) {
  return {"acme", service, "prod", "v1"};
}

route active(const route_key& k, const std::string& url) {
  route r;
  r.key = k;
  r.url = url;
  r.is_active = true;
  return r;
}

route_event event(const route_key& k, std::int64_t version, std::optional<route> after) {
  route_event e;
  e.registry_version = version;
  e.key = k;
  e.action = after ? (after->is_active ? "updated" : "deactivated") : "deleted";
  e.after = std::move(after);
  return e;
}

route_cache_options options() {
  route_cache_options o;
  o.positive_ttl = 60s;
  o.negative_ttl = 10s;
  o.max_entries = 3;
  o.stale_max = 300s;
  return o;
}

class route_cache_test : public ::testing::Test {
 protected:
  // Fills `k` as a lookup at `version` would.
  cache_view fill(const route_key& k, std::optional<route> found, std::int64_t version) {
    cache_.begin_fill(k);
    return cache_.fill(k, found, version, t0_);
  }

  clock::time_point t0_ = clock::time_point{} + 1000h;
  route_cache cache_{options()};
};

TEST_F(route_cache_test, an_unknown_key_is_absent) {
  EXPECT_EQ(cache_.find(key("a"), t0_).state, cache_state::absent);
  EXPECT_EQ(cache_.stale(key("a"), t0_), std::nullopt);
}

TEST_F(route_cache_test, a_filled_active_route_is_positive_until_its_ttl) {
  const auto v = fill(key("a"), active(key("a"), "http://a/"), 5);
  EXPECT_EQ(v.state, cache_state::positive);
  EXPECT_EQ(v.url, "http://a/");
  EXPECT_EQ(cache_.find(key("a"), t0_ + 59s).state, cache_state::positive);
  EXPECT_EQ(cache_.find(key("a"), t0_ + 59s).url, "http://a/");
  EXPECT_EQ(cache_.find(key("a"), t0_ + 60s).state, cache_state::expired);
  EXPECT_EQ(cache_.size(), 1u);
}

TEST_F(route_cache_test, an_expired_route_is_served_stale_within_the_bound_then_dropped) {
  fill(key("a"), active(key("a"), "http://a/"), 5);
  EXPECT_EQ(cache_.stale(key("a"), t0_ + 60s), "http://a/");
  EXPECT_EQ(cache_.stale(key("a"), t0_ + 359s), "http://a/");
  EXPECT_EQ(cache_.find(key("a"), t0_ + 359s).state, cache_state::expired);
  EXPECT_EQ(cache_.stale(key("a"), t0_ + 360s), std::nullopt);
  EXPECT_EQ(cache_.find(key("a"), t0_ + 360s).state, cache_state::absent);
  EXPECT_EQ(cache_.size(), 0u) << "dropped once past the stale bound";
}

TEST_F(route_cache_test, a_missing_route_is_negative_until_the_negative_ttl) {
  EXPECT_EQ(fill(key("a"), std::nullopt, 5).state, cache_state::negative);
  EXPECT_EQ(cache_.find(key("a"), t0_ + 9s).state, cache_state::negative);
  EXPECT_EQ(cache_.stale(key("a"), t0_ + 5s), std::nullopt) << "a negative entry has no url";
  EXPECT_EQ(cache_.find(key("a"), t0_ + 10s).state, cache_state::absent);
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(route_cache_test, an_inactive_route_is_negative) {
  auto r = active(key("a"), "http://a/");
  r.is_active = false;
  EXPECT_EQ(fill(key("a"), r, 5).state, cache_state::negative);
}

TEST_F(route_cache_test, a_zero_negative_ttl_caches_no_missing_route) {
  auto o = options();
  o.negative_ttl = 0s;
  route_cache cache(o);
  cache.begin_fill(key("a"));
  EXPECT_EQ(cache.fill(key("a"), std::nullopt, 5, t0_).state, cache_state::absent);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(route_cache_test, the_least_recently_used_entry_is_evicted_at_the_bound) {
  fill(key("a"), active(key("a"), "http://a/"), 1);
  fill(key("b"), active(key("b"), "http://b/"), 1);
  fill(key("c"), active(key("c"), "http://c/"), 1);
  ASSERT_EQ(cache_.find(key("a"), t0_).state, cache_state::positive);  // a is now the newest
  fill(key("d"), active(key("d"), "http://d/"), 1);
  EXPECT_EQ(cache_.size(), 3u);
  EXPECT_EQ(cache_.find(key("b"), t0_).state, cache_state::absent) << "b was the oldest";
  EXPECT_EQ(cache_.find(key("a"), t0_).state, cache_state::positive);
  EXPECT_EQ(cache_.find(key("c"), t0_).state, cache_state::positive);
  EXPECT_EQ(cache_.find(key("d"), t0_).state, cache_state::positive);
}

TEST_F(route_cache_test, a_refill_of_an_expired_route_restarts_its_ttl) {
  fill(key("a"), active(key("a"), "http://a/"), 1);
  cache_.begin_fill(key("a"));
  const auto v = cache_.fill(key("a"), active(key("a"), "http://a2/"), 2, t0_ + 70s);
  EXPECT_EQ(v.state, cache_state::positive);
  EXPECT_EQ(cache_.find(key("a"), t0_ + 129s).url, "http://a2/");
}

TEST_F(route_cache_test, an_event_rewarms_a_cached_key_with_fresh_ttl) {
  fill(key("a"), active(key("a"), "http://a/"), 5);
  EXPECT_TRUE(cache_.apply(event(key("a"), 6, active(key("a"), "http://new/")), t0_ + 50s));
  const auto v = cache_.find(key("a"), t0_ + 100s);
  EXPECT_EQ(v.state, cache_state::positive);
  EXPECT_EQ(v.url, "http://new/");
}

TEST_F(route_cache_test, a_deactivating_or_deleting_event_makes_a_negative_entry) {
  fill(key("a"), active(key("a"), "http://a/"), 5);
  fill(key("b"), active(key("b"), "http://b/"), 5);
  auto off = active(key("a"), "http://a/");
  off.is_active = false;
  EXPECT_TRUE(cache_.apply(event(key("a"), 6, off), t0_));
  EXPECT_TRUE(cache_.apply(event(key("b"), 7, std::nullopt), t0_));
  EXPECT_EQ(cache_.find(key("a"), t0_).state, cache_state::negative);
  EXPECT_EQ(cache_.find(key("b"), t0_).state, cache_state::negative);
  EXPECT_EQ(cache_.stale(key("a"), t0_), std::nullopt) << "a deactivated route is not served";
}

TEST_F(route_cache_test, an_event_for_an_uncached_key_adds_nothing) {
  EXPECT_FALSE(cache_.apply(event(key("a"), 6, active(key("a"), "http://a/")), t0_));
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(route_cache_test, an_event_not_newer_than_the_entry_is_ignored) {
  fill(key("a"), active(key("a"), "http://a/"), 9);
  EXPECT_FALSE(cache_.apply(event(key("a"), 9, std::nullopt), t0_));
  EXPECT_FALSE(cache_.apply(event(key("a"), 3, std::nullopt), t0_));
  EXPECT_EQ(cache_.find(key("a"), t0_).state, cache_state::positive);
}

TEST_F(route_cache_test, invalidate_removes_an_older_entry_only) {
  fill(key("a"), active(key("a"), "http://a/"), 9);
  EXPECT_FALSE(cache_.invalidate(key("a"), 9));
  EXPECT_TRUE(cache_.invalidate(key("a"), 10));
  EXPECT_EQ(cache_.find(key("a"), t0_).state, cache_state::absent);
}

TEST_F(route_cache_test, a_lookup_older_than_an_event_applied_meanwhile_does_not_overwrite_it) {
  cache_.begin_fill(key("a"));
  // The lookup read version 4; a change at 5 arrives before its answer.
  EXPECT_TRUE(cache_.apply(event(key("a"), 5, active(key("a"), "http://new/")), t0_));
  const auto v = cache_.fill(key("a"), active(key("a"), "http://old/"), 4, t0_);
  EXPECT_EQ(v.state, cache_state::positive);
  EXPECT_EQ(v.url, "http://new/");
  EXPECT_EQ(cache_.find(key("a"), t0_).url, "http://new/");
  EXPECT_EQ(cache_.filling(), 0u);
}

TEST_F(route_cache_test, a_superseded_lookup_is_told_the_fencing_event_even_once_evicted) {
  cache_.begin_fill(key("a"));
  cache_.apply(event(key("a"), 5, active(key("a"), "http://new/")), t0_);
  fill(key("b"), active(key("b"), "http://b/"), 5);
  fill(key("c"), active(key("c"), "http://c/"), 5);
  fill(key("d"), active(key("d"), "http://d/"), 5);
  const auto v = cache_.fill(key("a"), active(key("a"), "http://old/"), 4, t0_);
  EXPECT_TRUE(v.superseded);
  EXPECT_EQ(v.url, "http://new/");
  EXPECT_EQ(cache_.find(key("a"), t0_).state, cache_state::absent) << "the old read is not kept";
}

TEST_F(route_cache_test, a_lookup_dropped_by_a_clear_is_not_superseded_by_known_content) {
  cache_.begin_fill(key("a"));
  cache_.apply(event(key("a"), 5, active(key("a"), "http://new/")), t0_);
  cache_.clear(6);
  const auto v = cache_.fill(key("a"), active(key("a"), "http://a/"), 4, t0_);
  EXPECT_FALSE(v.superseded);
  EXPECT_EQ(v.state, cache_state::absent);
}

TEST_F(route_cache_test, a_lookup_older_than_an_invalidation_meanwhile_is_not_cached) {
  fill(key("a"), active(key("a"), "http://a/"), 3);
  cache_.begin_fill(key("a"));
  cache_.invalidate(key("a"), 5);
  EXPECT_EQ(cache_.fill(key("a"), active(key("a"), "http://old/"), 4, t0_).state,
            cache_state::absent);
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(route_cache_test, a_lookup_that_saw_the_change_is_cached) {
  cache_.begin_fill(key("a"));
  cache_.invalidate(key("a"), 5);
  EXPECT_EQ(cache_.fill(key("a"), active(key("a"), "http://a/"), 5, t0_).state,
            cache_state::positive);
}

TEST_F(route_cache_test, a_lookup_older_than_a_clear_meanwhile_is_not_cached) {
  fill(key("b"), active(key("b"), "http://b/"), 3);
  cache_.begin_fill(key("a"));
  cache_.clear(20);
  EXPECT_EQ(cache_.size(), 0u);
  EXPECT_EQ(cache_.fill(key("a"), active(key("a"), "http://a/"), 19, t0_).state,
            cache_state::absent);
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(route_cache_test, an_abandoned_fill_leaves_the_entry_and_no_fence) {
  fill(key("a"), active(key("a"), "http://a/"), 3);
  cache_.begin_fill(key("a"));
  cache_.abandon_fill(key("a"));
  EXPECT_EQ(cache_.filling(), 0u);
  EXPECT_EQ(cache_.stale(key("a"), t0_ + 100s), "http://a/");
}

TEST_F(route_cache_test, an_entry_newer_than_the_lookup_stays) {
  cache_.begin_fill(key("a"));
  cache_.begin_fill(key("a"));
  cache_.fill(key("a"), active(key("a"), "http://new/"), 8, t0_);
  EXPECT_EQ(cache_.fill(key("a"), active(key("a"), "http://old/"), 7, t0_).url, "http://new/");
  EXPECT_EQ(cache_.filling(), 0u);
}

}  // namespace
}  // namespace sluice::routing
