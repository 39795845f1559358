// breaker_board: one breaker per host:port, shared, its state mirrored in
// sluice_delivery_circuit_state{target}.
#include "sluice/delivery/breaker_board.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

using namespace std::chrono_literals;
using admission = circuit_breaker::admission;

double gauge(metrics::registry& m, const std::string& target) {
  const std::string text = m.expose();
  const std::string series = "sluice_delivery_circuit_state{target=\"" + target + "\"} ";
  const auto at = text.find(series);
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size()));
}

TEST(breaker_board, keys_are_host_and_port) {
  EXPECT_EQ(breaker_board::key_of("hooks.internal", 8080), "hooks.internal:8080");
  EXPECT_EQ(breaker_board::key_of("::1", 80), "[::1]:80");
}

TEST(breaker_board, mirrors_each_targets_state_in_the_gauge) {
  metrics::registry m;
  breaker_options o;
  o.failure_threshold = 2;
  o.open_initial = 1s;
  breaker_board board(m, o);
  const auto t0 = breaker_board::clock::now();
  const std::string a = "a:80";
  const std::string b = "b:80";
  EXPECT_EQ(board.state(a), breaker_state::closed);
  EXPECT_EQ(board.admit(a, t0), admission::allowed);
  EXPECT_EQ(gauge(m, a), 0);
  board.on_failure(a, t0);
  board.on_failure(a, t0);
  EXPECT_EQ(board.state(a), breaker_state::open);
  EXPECT_EQ(gauge(m, a), 1);
  EXPECT_EQ(board.probe_at(a), t0 + 1s);
  // Another target is not affected.
  EXPECT_EQ(board.admit(b, t0), admission::allowed);
  EXPECT_EQ(gauge(m, b), 0);
  EXPECT_EQ(board.admit(a, t0 + 500ms), admission::rejected);
  EXPECT_EQ(board.admit(a, t0 + 1s), admission::probe);
  EXPECT_EQ(gauge(m, a), 2);
  // A probe that ends without an outcome gives the slot back.
  board.release_probe(a);
  EXPECT_EQ(board.admit(a, t0 + 1s), admission::probe);
  board.on_success(a, t0 + 1100ms);
  EXPECT_EQ(board.state(a), breaker_state::closed);
  EXPECT_EQ(gauge(m, a), 0);
  // Never used: closed, and no probe time.
  EXPECT_EQ(board.probe_at("c:1"), breaker_board::clock::time_point::min());
}

}  // namespace
}  // namespace sluice::delivery
