#include "sluice/relay/pending_publisher.hpp"

#include <chrono>
#include <optional>

#include "sluice/metrics/registry.hpp"
#include "sluice/relay/publish_marker.hpp"
#include "sluice/relay/relay_store.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace sluice::relay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = pending_publisher::clock;

asio::awaitable<void> sleep_for(clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Runs `task` and sets `ended` once it returned.
void spawn(asio::io_context& io, asio::awaitable<void> task, bool& ended) {
  asio::co_spawn(io, std::move(task), [&ended](const std::exception_ptr&) { ended = true; });
}

asio::awaitable<void> stop_after(pending_publisher& p, clock::duration after,
                                 clock::duration drain) {
  co_await sleep_for(after);
  p.stop(clock::now() + drain);
}

std::vector<message> batch(int count) {
  static uuid_v7_generator ids;
  std::vector<message> out;
  for (int i = 0; i < count; ++i) {
    message m;
    m.id = ids.next();
    m.created_ms = 0;
    m.queue = "q";
    m.payload = "{}";
    out.push_back(std::move(m));
  }
  return out;
}

// Everything the loop needs, none of it connected: no broker, no database. The pool is never
// used (the mode cache is never loaded), the client never started.
struct fixture {
  asio::io_context io;
  metrics::registry registry;
  relay_metrics metrics{registry};
  store::pg_pool pool{io.get_executor(), store::pool_options{}};
  queue_modes modes{pool};
  relay_store store{pool};
  publish_marker marker{io.get_executor(), store};
  std::shared_ptr<amqp::client> client = amqp::client::create(io.get_executor(), {});
  topology_declarer declarer{client, amqp::queue_type::quorum};
  std::shared_ptr<publish_handoff> handoff =
      publish_handoff::create(client->get_publisher(), declarer, marker, metrics);

  pending_publisher make(std::chrono::milliseconds defer_after, std::size_t max_items = 100) {
    return pending_publisher(max_items, 1 << 20, defer_after, client, modes, declarer, *handoff,
                             metrics);
  }
};

TEST(relay_pending_publisher, a_waiting_message_goes_to_the_sweeper_when_due_without_a_wake) {
  fixture f;
  auto p = f.make(60ms);
  p.push(batch(2));
  std::optional<std::size_t> early, late;
  bool ended = false;
  spawn(f.io, p.run(), ended);
  asio::co_spawn(
      f.io,
      [&]() -> asio::awaitable<void> {
        co_await sleep_for(20ms);
        early = p.queue().size();
        // Nothing notifies the loop: only its own deadline can defer the messages.
        co_await sleep_for(100ms);
        late = p.queue().size();
        p.stop(clock::now());
      },
      asio::detached);
  f.io.run_for(5s);
  ASSERT_TRUE(early && late);
  EXPECT_EQ(*early, 2u);
  EXPECT_EQ(*late, 0u);
  EXPECT_EQ(f.metrics.deferred.value(), 2.0);
  EXPECT_TRUE(ended);
}

TEST(relay_pending_publisher, a_batch_that_does_not_fit_is_left_to_the_sweeper_whole) {
  fixture f;
  auto p = f.make(10s, 3);
  p.push(batch(2));
  p.push(batch(2));
  EXPECT_EQ(p.queue().size(), 2u);
  EXPECT_EQ(f.metrics.deferred.value(), 2.0);
}

TEST(relay_pending_publisher, stop_while_disconnected_ends_the_loop_at_once) {
  fixture f;
  auto p = f.make(10s);
  p.push(batch(3));
  bool ended = false;
  spawn(f.io, p.run(), ended);
  asio::co_spawn(f.io, stop_after(p, 10ms, 10s), asio::detached);
  const auto start = clock::now();
  f.io.run_for(5s);
  EXPECT_TRUE(ended);
  EXPECT_LT(clock::now() - start, 1s);
  // Not published and not given up here: the owner counts what is left at stop.
  EXPECT_EQ(p.queue().size(), 3u);
}

TEST(relay_pending_publisher, stop_with_an_empty_queue_ends_the_loop_at_once) {
  fixture f;
  auto p = f.make(10s);
  bool ended = false;
  spawn(f.io, p.run(), ended);
  asio::co_spawn(f.io, stop_after(p, 10ms, 10s), asio::detached);
  f.io.run_for(5s);
  EXPECT_TRUE(ended);
}

}  // namespace
}  // namespace sluice::relay
