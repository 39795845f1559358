// breaker_board::retain: the board keeps the breakers of the targets in use only, and their
// metric series go with them (bounded by the subscriptions there are, not by every target ever
// used).
#include "sluice/delivery/breaker_board.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

using namespace std::chrono_literals;

TEST(attack2_breaker_board, retain_forgets_unused_targets_and_their_series) {
  metrics::registry m;
  breaker_options o;
  o.failure_threshold = 1;
  breaker_board board(m, o);
  const auto t0 = breaker_board::clock::now();
  for (int i = 0; i < 100; ++i)
    board.admit("t" + std::to_string(i) + ":80", t0);
  board.on_failure("t1:80", t0);  // open: a transitions series too
  EXPECT_EQ(board.size(), 100u);
  board.retain({"t0:80"});
  EXPECT_EQ(board.size(), 1u);
  const std::string text = m.expose();
  EXPECT_NE(text.find("target=\"t0:80\""), std::string::npos);
  EXPECT_EQ(text.find("target=\"t1:80\""), std::string::npos) << text;
  EXPECT_EQ(text.find("target=\"t99:80\""), std::string::npos);
  // A forgotten target used again starts closed.
  EXPECT_EQ(board.admit("t1:80", t0), circuit_breaker::admission::allowed);
}

}  // namespace
}  // namespace sluice::delivery
