#include "sluice/delivery/retry_delay.hpp"

#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

retry_policy policy(milliseconds initial, milliseconds max) {
  retry_policy p;
  p.initial_backoff = initial;
  p.max_backoff = max;
  return p;
}

TEST(backoff_bound, doubles_from_the_initial_backoff_up_to_the_max_for_attempts_1_to_64) {
  const auto p = policy(1'000ms, 300'000ms);
  for (std::uint32_t attempt = 1; attempt <= 64; ++attempt) {
    const double doubled = 1'000.0 * std::pow(2.0, attempt - 1);
    const auto expected = doubled >= 300'000 ? 300'000ms : milliseconds(std::int64_t(doubled));
    EXPECT_EQ(backoff_bound(p, attempt), expected) << "attempt " << attempt;
  }
  EXPECT_EQ(backoff_bound(p, 1), 1'000ms);
  EXPECT_EQ(backoff_bound(p, 9), 256'000ms);
  EXPECT_EQ(backoff_bound(p, 10), 300'000ms);
}

TEST(backoff_bound, never_overflows_for_huge_attempts_or_bounds) {
  const auto p = policy(1'000ms, 300'000ms);
  EXPECT_EQ(backoff_bound(p, 1'000), 300'000ms);
  EXPECT_EQ(backoff_bound(p, std::numeric_limits<std::uint32_t>::max()), 300'000ms);

  // With an unbounded max the product itself must not wrap.
  const auto unbounded = policy(1ms, milliseconds::max());
  EXPECT_EQ(backoff_bound(unbounded, 63), milliseconds(std::int64_t{1} << 62));
  for (std::uint32_t attempt : {64u, 65u, 100u, 4'000'000'000u})
    EXPECT_EQ(backoff_bound(unbounded, attempt), milliseconds::max()) << attempt;
  const auto big = policy(milliseconds(milliseconds::max().count() / 3), milliseconds::max());
  EXPECT_EQ(backoff_bound(big, 2), milliseconds(milliseconds::max().count() / 3 * 2));
  EXPECT_EQ(backoff_bound(big, 3), milliseconds::max());
}

TEST(backoff_bound, odd_policies) {
  EXPECT_EQ(backoff_bound(policy(1'000ms, 300'000ms), 0), 1'000ms);  // attempt 0 reads as 1
  EXPECT_EQ(backoff_bound(policy(0ms, 300'000ms), 20), 0ms);
  EXPECT_EQ(backoff_bound(policy(5'000ms, 2'000ms), 1), 2'000ms);  // initial above the max
  EXPECT_EQ(backoff_bound(policy(-5ms, -1ms), 3), 0ms);
}

TEST(full_jitter, spans_zero_to_the_bound_inclusive) {
  EXPECT_EQ(full_jitter(10'000ms, 0), 0ms);
  EXPECT_EQ(full_jitter(10'000ms, std::numeric_limits<std::uint64_t>::max()), 10'000ms);
  EXPECT_EQ(full_jitter(10'000ms, std::uint64_t{1} << 63), 5'000ms);
  EXPECT_EQ(full_jitter(0ms, 12345), 0ms);
  EXPECT_EQ(full_jitter(-3ms, 12345), 0ms);
  EXPECT_EQ(full_jitter(milliseconds::max(), std::numeric_limits<std::uint64_t>::max()),
            milliseconds::max());
}

TEST(full_jitter, is_uniform_mean_half_the_bound_all_within_it) {
  std::mt19937_64 random(20261202);
  constexpr int samples = 200'000;
  const milliseconds bound = 10'000ms;
  double sum = 0;
  milliseconds lowest = bound, highest = 0ms;
  for (int i = 0; i < samples; ++i) {
    const milliseconds d = full_jitter(bound, random());
    ASSERT_GE(d, 0ms);
    ASSERT_LE(d, bound);
    sum += static_cast<double>(d.count());
    lowest = std::min(lowest, d);
    highest = std::max(highest, d);
  }
  const double mean = sum / samples;
  EXPECT_NEAR(mean, 5'000.0, 5'000.0 * 0.05);
  // Both ends are reached: it is not a narrow band around the middle.
  EXPECT_LT(lowest, 100ms);
  EXPECT_GT(highest, 9'900ms);
}

TEST(retry_delay, is_the_jittered_backoff_without_retry_after) {
  const auto p = policy(1'000ms, 300'000ms);
  std::mt19937_64 random(7);
  for (int i = 0; i < 10'000; ++i) {
    const auto d = retry_delay(p, 3, std::nullopt, 60'000ms, random());
    ASSERT_GE(d, 0ms);
    ASSERT_LE(d, 4'000ms);
  }
  EXPECT_EQ(retry_delay(p, 3, std::nullopt, 60'000ms, std::numeric_limits<std::uint64_t>::max()),
            4'000ms);
}

TEST(retry_delay, never_below_retry_after_and_capped_at_the_max) {
  const auto p = policy(1'000ms, 300'000ms);
  std::mt19937_64 random(11);
  for (int i = 0; i < 10'000; ++i) {
    const auto d = retry_delay(p, 2, 30'000ms, 60'000ms, random());
    ASSERT_GE(d, 30'000ms);  // the jitter (<= 2 s) never undercuts what the target asked for
    ASSERT_LE(d, 30'000ms);
  }
  // A Retry-After beyond DELIVERY_RETRY_AFTER_MAX_MS counts only up to it.
  EXPECT_EQ(retry_delay(p, 1, 86'400'000ms, 60'000ms, 0), 60'000ms);
  EXPECT_EQ(retry_delay(p, 1, milliseconds::max(), 60'000ms, 0), 60'000ms);
  // A longer jittered backoff wins over a short Retry-After.
  EXPECT_EQ(retry_delay(p, 9, 1'000ms, 60'000ms, std::numeric_limits<std::uint64_t>::max()),
            256'000ms);
  for (int i = 0; i < 10'000; ++i) {
    const auto d = retry_delay(p, 9, 1'000ms, 60'000ms, random());
    ASSERT_GE(d, 1'000ms);
    ASSERT_LE(d, 256'000ms);
  }
  // Retry-After: 0 asks for nothing; a negative one is no request either.
  EXPECT_EQ(retry_delay(p, 1, 0ms, 60'000ms, 0), 0ms);
  EXPECT_EQ(retry_delay(p, 1, -5'000ms, 60'000ms, 0), 0ms);
}

std::chrono::system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s,
                                          int ms = 0) {
  using namespace std::chrono;
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s} +
         milliseconds{ms};
}

TEST(parse_retry_after, delta_seconds) {
  const auto now = utc(2026, 12, 2, 12, 0, 0);
  EXPECT_EQ(parse_retry_after("120", now), 120'000ms);
  EXPECT_EQ(parse_retry_after("0", now), 0ms);
  EXPECT_EQ(parse_retry_after("007", now), 7'000ms);
  EXPECT_EQ(parse_retry_after("  5\t", now), 5'000ms);  // optional whitespace around it
  EXPECT_EQ(parse_retry_after("86400", now), 86'400'000ms);
}

TEST(parse_retry_after, huge_delta_seconds_saturate) {
  const auto now = utc(2026, 12, 2, 12, 0, 0);
  EXPECT_EQ(parse_retry_after("9223372036854775807", now), milliseconds::max());
  EXPECT_EQ(parse_retry_after("99999999999999999999999999999999", now), milliseconds::max());
  EXPECT_EQ(parse_retry_after("9223372036854775", now), milliseconds::max());
  EXPECT_EQ(parse_retry_after("9223372036854", now), milliseconds(9223372036854'000));
}

TEST(parse_retry_after, the_three_http_date_forms) {
  const auto now = utc(1994, 11, 6, 8, 49, 0);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 37'000ms);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), 37'000ms);
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", now), 37'000ms);
  EXPECT_EQ(parse_retry_after("Thu Nov 10 08:49:00 1994", now), 4 * 86'400'000ms);
  EXPECT_EQ(parse_retry_after("Mon, 07 Nov 1994 08:49:00 GMT", now), 86'400'000ms);
  EXPECT_EQ(parse_retry_after(" Sun, 06 Nov 1994 08:50:00 GMT ", now), 60'000ms);
}

TEST(parse_retry_after, a_date_in_the_past_is_zero) {
  const auto now = utc(2026, 12, 2, 12, 0, 0);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 0ms);
  EXPECT_EQ(parse_retry_after("Wed, 02 Dec 2026 12:00:00 GMT", now), 0ms);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), 0ms);
}

TEST(parse_retry_after, a_fraction_of_a_second_rounds_up) {
  const auto now = utc(2026, 12, 2, 11, 59, 59, 250);
  EXPECT_EQ(parse_retry_after("Wed, 02 Dec 2026 12:00:00 GMT", now), 750ms);
}

TEST(parse_retry_after, rfc850_two_digit_years_within_50_years) {
  const auto now = utc(2026, 12, 2, 12, 0, 0);
  EXPECT_EQ(parse_retry_after("Wednesday, 02-Dec-26 12:00:10 GMT", now), 10'000ms);
  // 2027 is next year, not 1927.
  EXPECT_EQ(parse_retry_after("Friday, 01-Jan-27 00:00:00 GMT", now),
            std::chrono::duration_cast<milliseconds>(utc(2027, 1, 1, 0, 0, 0) - now));
  // 2080 would be more than 50 years ahead: it is 1980, long past.
  EXPECT_EQ(parse_retry_after("Tuesday, 01-Jan-80 00:00:00 GMT", now), 0ms);
  // 2076 is within 50 years.
  EXPECT_EQ(parse_retry_after("Wednesday, 01-Jan-76 00:00:00 GMT", now),
            std::chrono::duration_cast<milliseconds>(utc(2076, 1, 1, 0, 0, 0) - now));
}

TEST(parse_retry_after, garbage_is_ignored) {
  const auto now = utc(2026, 12, 2, 12, 0, 0);
  for (std::string_view v : {"",
                             "   ",
                             "abc",
                             "-5",
                             "+5",
                             "1.5",
                             "5s",
                             "5 5",
                             "0x10",
                             "1e3",
                             "Sun, 06 Nov 1994 08:49:37",         // no GMT
                             "Sun, 06 Nov 1994 08:49:37 UTC",     // another zone
                             "sun, 06 Nov 1994 08:49:37 GMT",     // names are case-sensitive
                             "Sun, 6 Nov 1994 08:49:37 GMT",      // day not two digits
                             "Sun, 06 Nov 94 08:49:37 GMT",       // two-digit year in fixdate
                             "Sun, 06 Foo 1994 08:49:37 GMT",     // no such month
                             "Xyz, 06 Nov 1994 08:49:37 GMT",     // no such day
                             "Sun, 31 Feb 1994 08:49:37 GMT",     // no such date
                             "Sun, 00 Nov 1994 08:49:37 GMT",     // no day 0
                             "Sun, 06 Nov 1994 24:00:00 GMT",     // hour out of range
                             "Sun, 06 Nov 1994 08:60:00 GMT",     // minute out of range
                             "Sun, 06 Nov 1994 08:49:61 GMT",     // second out of range
                             "Sun, 06 Nov 1994 08:49:37 GMT x",   // trailing text
                             "Sun, 06 Nov 1994 8:49:37 GMT",      // hour not two digits
                             "Sunday, 06-Nov-1994 08:49:37 GMT",  // four-digit year in RFC 850
                             "Sun, 06-Nov-94 08:49:37 GMT",       // short day name in RFC 850
                             "Sun Nov 6 08:49:37 1994",           // asctime day unpadded
                             "Sun Nov  6 08:49:37 94",            // two-digit year in asctime
                             "Sun Nov  6 08:49:37 1994 GMT",      // asctime has no zone
                             "2026-12-02T12:00:00Z"}) {           // ISO 8601 is not HTTP
    EXPECT_FALSE(parse_retry_after(v, now)) << '"' << v << '"';
  }
}

}  // namespace
}  // namespace sluice::delivery
