#include "sluice/store/follower_mode.hpp"

#include <gtest/gtest.h>

namespace sluice::store {
namespace {

using namespace std::chrono_literals;
using mode = follower_mode;
using event = follower_event;

follower_modes at(mode target) {
  follower_modes m(200ms, 5s);
  switch (target) {
    case mode::connecting:
      break;
    case mode::loading:
      m.on(event::connected);
      break;
    case mode::following:
      m.on(event::connected);
      m.on(event::loaded);
      break;
    case mode::backing_off:
      m.on(event::failed);
      break;
    case mode::stopped:
      m.on(event::stop);
      break;
  }
  EXPECT_EQ(m.mode(), target);
  return m;
}

void expect_change(follower_modes& m, event e, mode from, mode to) {
  const auto c = m.on(e);
  ASSERT_TRUE(c.has_value()) << to_string(e) << " in " << to_string(from);
  EXPECT_EQ(c->from, from);
  EXPECT_EQ(c->to, to);
  EXPECT_EQ(m.mode(), to);
}

void expect_stays(follower_modes& m, event e) {
  const mode before = m.mode();
  EXPECT_FALSE(m.on(e).has_value()) << to_string(e) << " in " << to_string(before);
  EXPECT_EQ(m.mode(), before);
}

TEST(follower_modes, starts_connecting) {
  follower_modes m(200ms, 5s);
  EXPECT_EQ(m.mode(), mode::connecting);
}

TEST(follower_modes, connecting_to_loading_on_connected) {
  auto m = at(mode::connecting);
  expect_change(m, event::connected, mode::connecting, mode::loading);
}

TEST(follower_modes, connecting_to_backing_off_on_failed) {
  auto m = at(mode::connecting);
  expect_change(m, event::failed, mode::connecting, mode::backing_off);
  EXPECT_EQ(m.pause(), 200ms);
}

TEST(follower_modes, loading_to_following_on_loaded) {
  auto m = at(mode::loading);
  expect_change(m, event::loaded, mode::loading, mode::following);
}

TEST(follower_modes, loading_to_backing_off_on_failed) {
  auto m = at(mode::loading);
  expect_change(m, event::failed, mode::loading, mode::backing_off);
}

TEST(follower_modes, following_reloads_everything_when_due) {
  auto m = at(mode::following);
  expect_change(m, event::reload_due, mode::following, mode::loading);
  expect_change(m, event::loaded, mode::loading, mode::following);
}

TEST(follower_modes, following_stays_on_one_service_reloads) {
  auto m = at(mode::following);
  expect_stays(m, event::loaded);
  expect_stays(m, event::connected);
  expect_stays(m, event::pause_over);
}

TEST(follower_modes, following_to_backing_off_when_the_connection_breaks) {
  auto m = at(mode::following);
  expect_change(m, event::failed, mode::following, mode::backing_off);
  EXPECT_EQ(m.pause(), 200ms) << "a healthy follower's first failure waits the shortest pause";
}

TEST(follower_modes, backing_off_to_connecting_when_the_pause_is_over) {
  auto m = at(mode::backing_off);
  expect_stays(m, event::connected);
  expect_stays(m, event::loaded);
  expect_stays(m, event::reload_due);
  expect_change(m, event::pause_over, mode::backing_off, mode::connecting);
}

TEST(follower_modes, the_pause_doubles_per_failure_up_to_the_maximum) {
  follower_modes m(200ms, 1s);
  std::vector<std::chrono::milliseconds> pauses;
  for (int i = 0; i < 5; ++i) {
    m.on(event::failed);
    pauses.push_back(m.pause());
    m.on(event::pause_over);
  }
  EXPECT_EQ(pauses, (std::vector<std::chrono::milliseconds>{200ms, 400ms, 800ms, 1s, 1s}));
}

TEST(follower_modes, a_connect_that_then_fails_to_read_keeps_backing_off) {
  follower_modes m(200ms, 5s);
  m.on(event::failed);
  m.on(event::pause_over);
  m.on(event::connected);
  m.on(event::failed);  // e.g. the table does not exist yet
  EXPECT_EQ(m.pause(), 400ms);
}

TEST(follower_modes, a_full_reload_resets_the_pause) {
  follower_modes m(200ms, 5s);
  m.on(event::failed);
  m.on(event::pause_over);
  m.on(event::failed);
  m.on(event::pause_over);
  m.on(event::connected);
  m.on(event::loaded);
  m.on(event::failed);
  EXPECT_EQ(m.pause(), 200ms);
}

TEST(follower_modes, stop_ends_every_mode_and_nothing_leaves_stopped) {
  for (mode from : {mode::connecting, mode::loading, mode::following, mode::backing_off}) {
    auto m = at(from);
    expect_change(m, event::stop, from, mode::stopped);
    for (event e : {event::connected, event::loaded, event::reload_due, event::failed,
                    event::pause_over, event::stop}) {
      expect_stays(m, e);
    }
  }
}

}  // namespace
}  // namespace sluice::store
