// attack1: the attempt recorder's queue is bounded in bytes as well as in records: a target's
// long error texts (or a long outage) must not grow it without bound.
#include "sluice/delivery/attempt_recorder.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

attempt_record with_error(int n, std::size_t error_bytes) {
  attempt_record r;
  r.queue = "orders";
  r.subscription = "billing";
  r.attempt = static_cast<std::uint32_t>(n + 1);
  r.outcome = "retry";
  r.error = std::string(error_bytes, 'e');
  return r;
}

struct recorder_env {
  boost::asio::io_context io;
  store::pg_pool pool{io.get_executor(), store::pool_options{}};
  metrics::registry metrics;
};

TEST(attack1_recorder, a_long_error_text_is_cut_when_queued_not_when_written) {
  recorder_env env;
  attempt_recorder_options o;
  o.queue_max = 1'000;
  attempt_recorder rec(env.pool, env.metrics, o);
  // Nothing writes (the loop is not running: PostgreSQL away): 200 records of 1 MiB errors.
  for (int i = 0; i < 200; ++i)
    rec.record(with_error(i, 1 << 20));
  EXPECT_EQ(rec.queued(), 200u);
  EXPECT_LE(rec.queued_bytes(), 200u * 2048);
}

TEST(attack1_recorder, records_beyond_the_byte_bound_are_dropped) {
  recorder_env env;
  attempt_recorder_options o;
  o.queue_max = 1'000'000;
  o.queue_max_bytes = 64 * 1024;
  attempt_recorder rec(env.pool, env.metrics, o);
  for (int i = 0; i < 1'000; ++i)
    rec.record(with_error(i, 1000));
  EXPECT_LE(rec.queued_bytes(), 64u * 1024);
  EXPECT_GT(rec.queued(), 0u);
  EXPECT_LT(rec.queued(), 1'000u);
}

}  // namespace
}  // namespace sluice::delivery
