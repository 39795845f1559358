#include "sluice/delivery/circuit_breaker.hpp"

#include <string_view>

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

using namespace std::chrono_literals;
using admission = circuit_breaker::admission;
using time_point = circuit_breaker::clock::time_point;

// A fake clock: the breaker only ever sees the time points a test passes.
const time_point t0 = time_point{} + 1'000h;

breaker_options options() {
  breaker_options o;
  o.failure_threshold = 3;
  o.open_initial = 5'000ms;
  o.open_max = 30'000ms;
  return o;
}

// Opens a fresh breaker at `at` with threshold failures.
void open(circuit_breaker& b, time_point at) {
  for (std::uint32_t i = 0; i < options().failure_threshold; ++i) {
    ASSERT_EQ(b.admit(at), admission::allowed);
    b.on_failure(at);
  }
  ASSERT_EQ(b.state(), breaker_state::open);
}

TEST(circuit_breaker, starts_closed_and_admits) {
  circuit_breaker b(options());
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_EQ(b.admit(t0), admission::allowed);
  EXPECT_EQ(b.transitions(), 0u);
}

TEST(circuit_breaker, closed_stays_closed_below_the_threshold) {
  circuit_breaker b(options());
  b.on_failure(t0);
  b.on_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_EQ(b.admit(t0), admission::allowed);
  EXPECT_EQ(b.transitions(), 0u);
}

TEST(circuit_breaker, closed_success_resets_the_failure_run) {
  circuit_breaker b(options());
  b.on_failure(t0);
  b.on_failure(t0);
  b.on_success(t0);
  b.on_failure(t0);
  b.on_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::closed);
  b.on_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::open);
}

TEST(circuit_breaker, closed_to_open_after_threshold_consecutive_failures) {
  circuit_breaker b(options());
  open(b, t0);
  EXPECT_EQ(b.transitions(), 1u);
  EXPECT_EQ(b.probe_at(), t0 + 5'000ms);
}

TEST(circuit_breaker, open_rejects_until_the_wait_is_over) {
  circuit_breaker b(options());
  open(b, t0);
  EXPECT_EQ(b.admit(t0), admission::rejected);
  EXPECT_EQ(b.admit(t0 + 4'999ms), admission::rejected);
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.transitions(), 1u);
}

TEST(circuit_breaker, open_to_half_open_admits_exactly_one_probe) {
  circuit_breaker b(options());
  open(b, t0);
  EXPECT_EQ(b.admit(t0 + 5'000ms), admission::probe);
  EXPECT_EQ(b.state(), breaker_state::half_open);
  EXPECT_EQ(b.transitions(), 2u);
  EXPECT_EQ(b.admit(t0 + 5'000ms), admission::rejected);
  EXPECT_EQ(b.admit(t0 + 60'000ms), admission::rejected);
  EXPECT_EQ(b.state(), breaker_state::half_open);
}

TEST(circuit_breaker, half_open_to_closed_when_the_probe_succeeds) {
  circuit_breaker b(options());
  open(b, t0);
  ASSERT_EQ(b.admit(t0 + 5'000ms), admission::probe);
  b.on_success(t0 + 5'100ms);
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_EQ(b.transitions(), 3u);
  EXPECT_EQ(b.admit(t0 + 5'100ms), admission::allowed);
}

TEST(circuit_breaker, half_open_to_open_with_the_wait_doubled_when_the_probe_fails) {
  circuit_breaker b(options());
  open(b, t0);
  ASSERT_EQ(b.admit(t0 + 5'000ms), admission::probe);
  const time_point failed = t0 + 6'000ms;
  b.on_failure(failed);
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.transitions(), 3u);
  EXPECT_EQ(b.probe_at(), failed + 10'000ms);
  EXPECT_EQ(b.admit(failed + 9'999ms), admission::rejected);
  EXPECT_EQ(b.admit(failed + 10'000ms), admission::probe);
}

TEST(circuit_breaker, the_wait_doubles_per_failed_probe_up_to_open_max) {
  circuit_breaker b(options());
  open(b, t0);
  time_point now = t0;
  for (auto expected : {10'000ms, 20'000ms, 30'000ms, 30'000ms, 30'000ms}) {
    now = b.probe_at();
    ASSERT_EQ(b.admit(now), admission::probe);
    b.on_failure(now);
    EXPECT_EQ(b.probe_at() - now, expected);
  }
}

TEST(circuit_breaker, closing_resets_the_wait) {
  circuit_breaker b(options());
  open(b, t0);
  ASSERT_EQ(b.admit(b.probe_at()), admission::probe);
  b.on_failure(t0 + 5'000ms);  // wait now 10 s
  ASSERT_EQ(b.admit(b.probe_at()), admission::probe);
  b.on_success(t0 + 15'000ms);
  ASSERT_EQ(b.state(), breaker_state::closed);
  const time_point later = t0 + 100'000ms;
  open(b, later);
  EXPECT_EQ(b.probe_at(), later + 5'000ms);
}

TEST(circuit_breaker, half_open_to_open_when_the_probe_is_released_and_the_next_admit_probes) {
  circuit_breaker b(options());
  open(b, t0);
  ASSERT_EQ(b.admit(t0 + 5'000ms), admission::probe);
  b.release_probe();
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.transitions(), 3u);
  EXPECT_EQ(b.probe_at(), t0 + 5'000ms);  // not pushed back: nothing was learnt
  EXPECT_EQ(b.admit(t0 + 5'000ms), admission::probe);
  EXPECT_EQ(b.state(), breaker_state::half_open);
  // A released probe does not double the wait either.
  b.on_failure(t0 + 6'000ms);
  EXPECT_EQ(b.probe_at(), t0 + 16'000ms);
}

TEST(circuit_breaker, release_probe_outside_half_open_changes_nothing) {
  circuit_breaker b(options());
  b.release_probe();
  EXPECT_EQ(b.state(), breaker_state::closed);
  open(b, t0);
  b.release_probe();
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.probe_at(), t0 + 5'000ms);
  EXPECT_EQ(b.transitions(), 1u);
}

TEST(circuit_breaker, open_ignores_late_outcomes_of_requests_admitted_while_closed) {
  circuit_breaker b(options());
  open(b, t0);
  b.on_success(t0 + 1'000ms);
  EXPECT_EQ(b.state(), breaker_state::open);
  b.on_failure(t0 + 4'000ms);
  b.on_failure(t0 + 4'000ms);
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.probe_at(), t0 + 5'000ms);
  EXPECT_EQ(b.transitions(), 1u);
}

TEST(circuit_breaker, a_threshold_of_zero_opens_on_the_first_failure) {
  breaker_options o = options();
  o.failure_threshold = 0;
  circuit_breaker b(o);
  b.on_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::open);
}

TEST(circuit_breaker, names) {
  EXPECT_EQ(std::string_view(to_string(breaker_state::closed)), "closed");
  EXPECT_EQ(std::string_view(to_string(breaker_state::open)), "open");
  EXPECT_EQ(std::string_view(to_string(breaker_state::half_open)), "half_open");
}

}  // namespace
}  // namespace sluice::delivery
