// attack1: findings of the attack review of issue #10's delivery stores, against a real
// PostgreSQL. Each test failed before its fix (see the commit that added it).
#include "sluice/delivery/attempt_recorder.hpp"
#include "sluice/delivery/dead_letter_store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "dlq_test_support.hpp"

namespace sluice::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::in;
using test::run;

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

class attack1_test : public ::testing::Test {
 protected:
  test::dlq_database env_;
  metrics::registry metrics_;
  dead_letter_store letters_{*env_.pool};

  std::string scalar(const std::string& sql) { return env_.session().scalar(sql); }
};

// A target whose response body holds a NUL byte (a binary error page): the dead letter must
// still be written, or the message can be neither dead-lettered nor acked.
TEST_F(attack1_test, a_response_excerpt_with_a_nul_byte_is_still_dead_lettered) {
  auto d = test::make_dead_letter(1, "orders", "billing");
  d.response_excerpt = std::string("bad\0gateway", 11);
  const auto ec = run(env_.io, letters_.insert(d, in(10s)));
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_dead_letters"), "1");
}

// One error text with a NUL must not cost the other records of its batch.
TEST_F(attack1_test, an_error_text_with_a_nul_byte_does_not_drop_its_batch) {
  attempt_recorder_options o;
  o.flush_interval = 20ms;
  attempt_recorder rec(*env_.pool, metrics_, o);
  auto work = [&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, rec.run(), asio::detached);
    for (int i = 0; i < 10; ++i) {
      attempt_record r;
      r.message_id = test::id_of(i);
      r.queue = "orders";
      r.subscription = "billing";
      r.attempted_ms = 1'760'000'000'000 + i;
      r.outcome = "retry";
      r.error = i == 3 ? std::string("read\0failed", 11) : "status 503";
      rec.record(std::move(r));
    }
    co_await sleep_for(100ms);
    rec.stop();
  };
  run(env_.io, work());
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_delivery_attempts"), "10");
}

}  // namespace
}  // namespace sluice::delivery
