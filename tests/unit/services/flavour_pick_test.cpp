#include "sluice/services/flavour_pick.hpp"

#include <map>
#include <random>

#include "sluice/core/stable_hash.hpp"

#include <gtest/gtest.h>

namespace sluice::services {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::system_clock;

const clock::time_point now = clock::time_point(std::chrono::seconds(1'798'000'000));

service with_schedule(std::vector<weighted_flavour> weights,
                      clock::time_point valid_until = now + 1h) {
  service s;
  s.name = "payments";
  s.default_flavour = "std";
  s.flavours = {{"std", ""}, {"green", ""}, {"blue", ""}};
  schedule sch;
  sch.flavours = std::move(weights);
  sch.valid_until = valid_until;
  s.traffic = sch;
  return s;
}

// Keys as the proxy sees them: random UUID-like request ids.
std::vector<std::string> random_keys(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> keys;
  keys.reserve(n);
  char buf[40];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%016llx-%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    keys.emplace_back(buf);
  }
  return keys;
}

std::map<std::string, double> shares(const service& s, const std::vector<std::string>& keys) {
  std::map<std::string, double> count;
  for (const auto& k : keys) {
    const flavour* f = pick_flavour(s, k, now);
    EXPECT_NE(f, nullptr);
    if (f)
      count[f->name] += 1;
  }
  for (auto& [name, c] : count)
    c = 100.0 * c / static_cast<double>(keys.size());
  return count;
}

TEST(pick_flavour, splits_70_30_within_one_point_over_100k_keys) {
  const service s = with_schedule({{"green", 70}, {"std", 30}});
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    auto got = shares(s, random_keys(100'000, seed));
    EXPECT_NEAR(got["green"], 70.0, 1.0) << "seed " << seed;
    EXPECT_NEAR(got["std"], 30.0, 1.0) << "seed " << seed;
    EXPECT_EQ(got.count("blue"), 0u);
  }
}

TEST(pick_flavour, splits_three_ways_within_one_point_and_ignores_zero_weights) {
  const service s = with_schedule({{"std", 500}, {"green", 0}, {"blue", 200}, {"green", 300}});
  auto got = shares(s, random_keys(100'000, 42));
  EXPECT_NEAR(got["std"], 50.0, 1.0);
  EXPECT_NEAR(got["blue"], 20.0, 1.0);
  EXPECT_NEAR(got["green"], 30.0, 1.0);

  const service skewed = with_schedule({{"std", 1}, {"green", 98}, {"blue", 1}});
  got = shares(skewed, random_keys(100'000, 7));
  EXPECT_NEAR(got["std"], 1.0, 1.0);
  EXPECT_NEAR(got["green"], 98.0, 1.0);
  EXPECT_NEAR(got["blue"], 1.0, 1.0);
}

TEST(pick_flavour, splits_sequential_keys_too) {
  // Clients that number their requests (req-1, req-2, ...) must not all land on one side.
  const service s = with_schedule({{"green", 70}, {"std", 30}});
  std::vector<std::string> keys;
  for (int i = 0; i < 100'000; ++i)
    keys.push_back("req-" + std::to_string(i));
  auto got = shares(s, keys);
  EXPECT_NEAR(got["green"], 70.0, 1.0);
}

TEST(pick_flavour, same_key_same_flavour) {
  const service s = with_schedule({{"green", 50}, {"std", 30}, {"blue", 20}});
  const service copy = s;
  for (const auto& k : random_keys(2'000, 9)) {
    const flavour* first = pick_flavour(s, k, now);
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(pick_flavour(s, k, now + 10min)->name, first->name);
    EXPECT_EQ(pick_flavour(copy, k, now)->name, first->name) << "another snapshot";
  }
}

TEST(pick_flavour, is_the_same_in_every_build) {
  // Pinned values (computed by an independent implementation of the same steps): a change of the
  // hash would move every retried request to another flavour during a rolling upgrade, and break
  // instances that must agree.
  EXPECT_EQ(stable_hash64(""), 0xf52a15e9a9b5e89bULL);
  EXPECT_EQ(stable_hash64("req-1"), 0x0a2881c3268a7392ULL);
  const service s = with_schedule({{"green", 50}, {"std", 50}});
  EXPECT_EQ(pick_flavour(s, "0190a0b1-2c3d-7e4f-8a9b-0c1d2e3f4a5b", now)->name, "std");
  EXPECT_EQ(pick_flavour(s, "retry-me", now)->name, "green");
}

TEST(pick_flavour, falls_back_to_the_default_flavour) {
  const auto keys = random_keys(1'000, 5);
  service none = with_schedule({{"green", 1}});
  none.traffic.reset();
  service expired = with_schedule({{"green", 1}}, now);
  service past = with_schedule({{"green", 1}}, now - 1s);
  service zero = with_schedule({{"green", 1}});
  zero.traffic->flavours[0].weight = 0;        // parse_schedule refuses it; a stored one may not
  service gone = with_schedule({{"red", 5}});  // its flavour removed since
  for (const auto& k : keys) {
    for (const service* s : {&none, &expired, &past, &zero, &gone})
      EXPECT_EQ(pick_flavour(*s, k, now)->name, "std") << k;
  }
  service live = with_schedule({{"green", 1}}, now + 1ns);
  EXPECT_EQ(pick_flavour(live, keys[0], now)->name, "green");
}

TEST(pick_flavour, default_flavour_never_null_for_a_valid_service) {
  service s = with_schedule({{"green", 1}}, now - 1s);
  s.default_flavour = "blue";
  EXPECT_EQ(pick_flavour(s, "k", now)->name, "blue");
  service empty;
  EXPECT_EQ(pick_flavour(empty, "k", now), nullptr);
}

}  // namespace
}  // namespace sluice::services
