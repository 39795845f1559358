#include "sluice/api/readiness_verdict.hpp"

#include <optional>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::api {
namespace {

enum class pg { up, down };
enum class buf { ok, nearly_full, unusable };  // unusable: not writable, full or stuck
enum class mq { absent, up, down };

std::vector<check_result> checks(pg p, buf b, mq m) {
  std::vector<check_result> out;
  out.push_back({p == pg::up, "postgres", p == pg::up});
  out.push_back({b == buf::ok, "buffer", b != buf::unusable});
  if (m != mq::absent)
    out.push_back({m == mq::up, "rabbitmq", std::nullopt});
  return out;
}

struct row {
  pg p;
  buf b;
  mq m;
  readiness_status want;
};

// Every combination the daemon can be in today. Only PostgreSQL and the buffer decide whether
// pushes are acknowledged; everything else only turns ready into degraded.
const row table[] = {
    {pg::up, buf::ok, mq::absent, readiness_status::ready},
    {pg::up, buf::ok, mq::up, readiness_status::ready},
    {pg::up, buf::ok, mq::down, readiness_status::degraded},
    {pg::up, buf::nearly_full, mq::absent, readiness_status::degraded},
    {pg::up, buf::nearly_full, mq::up, readiness_status::degraded},
    {pg::up, buf::nearly_full, mq::down, readiness_status::degraded},
    {pg::up, buf::unusable, mq::absent, readiness_status::degraded},
    {pg::up, buf::unusable, mq::up, readiness_status::degraded},
    {pg::up, buf::unusable, mq::down, readiness_status::degraded},
    {pg::down, buf::ok, mq::absent, readiness_status::degraded},
    {pg::down, buf::ok, mq::up, readiness_status::degraded},
    {pg::down, buf::ok, mq::down, readiness_status::degraded},
    {pg::down, buf::nearly_full, mq::absent, readiness_status::degraded},
    {pg::down, buf::nearly_full, mq::up, readiness_status::degraded},
    {pg::down, buf::nearly_full, mq::down, readiness_status::degraded},
    {pg::down, buf::unusable, mq::absent, readiness_status::not_ready},
    {pg::down, buf::unusable, mq::up, readiness_status::not_ready},
    {pg::down, buf::unusable, mq::down, readiness_status::not_ready},
};

TEST(readiness_verdict, every_combination_of_postgres_buffer_and_rabbitmq) {
  for (std::size_t i = 0; i < std::size(table); ++i) {
    const row& r = table[i];
    const auto c = checks(r.p, r.b, r.m);
    const auto relaxed = decide_readiness(c, false);
    const auto strict = decide_readiness(c, true);
    SCOPED_TRACE("row " + std::to_string(i));
    EXPECT_EQ(relaxed.status, r.want);
    EXPECT_EQ(strict.status, r.want) << "strict changes the code, never the status";
    EXPECT_EQ(relaxed.http_status, r.want == readiness_status::not_ready ? 503 : 200);
    EXPECT_EQ(strict.http_status, r.want == readiness_status::ready ? 200 : 503);
  }
}

TEST(readiness_verdict, a_later_failing_check_degrades_but_never_changes_the_code) {
  auto c = checks(pg::up, buf::ok, mq::up);
  c.push_back({false, "consumers", std::nullopt});
  c.push_back({false, "routes", std::nullopt});
  const auto v = decide_readiness(c, false);
  EXPECT_EQ(v.status, readiness_status::degraded);
  EXPECT_EQ(v.http_status, 200);
}

TEST(readiness_verdict, with_nothing_that_takes_pushes_it_is_not_ready) {
  EXPECT_EQ(decide_readiness({}, false).status, readiness_status::not_ready);
  EXPECT_EQ(decide_readiness({}, false).http_status, 503);
  const std::vector<check_result> only_informational = {{true, "rabbitmq", std::nullopt}};
  EXPECT_EQ(decide_readiness(only_informational, false).status, readiness_status::not_ready);
  EXPECT_EQ(decide_readiness(only_informational, true).http_status, 503);
}

TEST(readiness_verdict, names_and_gauge_values) {
  EXPECT_STREQ(to_string(readiness_status::ready), "ready");
  EXPECT_STREQ(to_string(readiness_status::degraded), "degraded");
  EXPECT_STREQ(to_string(readiness_status::not_ready), "not_ready");
  EXPECT_EQ(gauge_value(readiness_status::ready), 1.0);
  EXPECT_EQ(gauge_value(readiness_status::degraded), 0.5);
  EXPECT_EQ(gauge_value(readiness_status::not_ready), 0.0);
}

}  // namespace
}  // namespace sluice::api
