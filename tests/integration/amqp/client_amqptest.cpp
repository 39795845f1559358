#include "sluice/amqp/client.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "independent_client.hpp"
#include "sluice_test/tcp_proxy.hpp"
#include "test_support.hpp"

namespace sluice::amqp {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::run;

// Lambdas are never written inside a co_await expression here: g++ 12 destroys capturing
// lambda temporaries there twice. They are named first.

std::chrono::steady_clock::time_point in(std::chrono::steady_clock::duration d) {
  return std::chrono::steady_clock::now() + d;
}

client_options options_for(const url& u) {
  client_options o;
  o.connection.server = u;
  o.connection.connect_timeout = 3s;
  o.connection.rpc_timeout = 5s;
  o.reconnect_initial_delay = 50ms;
  o.reconnect_max_delay = 400ms;
  o.resource_retry_interval = 200ms;
  o.publisher.publish_timeout = 5s;
  return o;
}

topology_callback declare_queue(std::string queue, std::string type) {
  return [queue, type](channel& ch) -> asio::awaitable<std::error_code> {
    queue_options qo;
    qo.arguments.set("x-queue-type", type);
    auto [ec, ok] = co_await ch.queue_declare(queue, qo);
    co_return ec;
  };
}

TEST(amqp_client, publishes_and_consumes_through_the_supervisor) {
  constexpr int total = 200;
  const auto queue = test::unique_name("sluice.test.client");
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = client::create(io.get_executor(), options_for(test::broker_url()));
    std::vector<client_state> states;
    c->on_state_change([&](client_state s) { states.push_back(s); });
    c->set_topology(declare_queue(queue, "quorum"));
    std::vector<std::string> got;
    consumer_spec spec;
    spec.queue = queue;
    spec.prefetch = 20;
    spec.on_delivery = [&](delivery d) {
      got.push_back(d.body);
      EXPECT_FALSE(d.ack());
    };
    c->add_consumer(spec);
    EXPECT_EQ(c->state(), client_state::stopped);
    c->start();
    CO_ASSERT_TRUE(co_await c->wait_connected(in(10s)));
    EXPECT_EQ(c->state(), client_state::connected);
    EXPECT_TRUE(c->ready());

    int acked = 0;
    publish_callback count = [&](publish_result r) {
      acked += r.outcome == publish_outcome::acked ? 1 : 0;
    };
    for (int i = 0; i < total; ++i) {
      outgoing_message m;
      m.routing_key = queue;
      m.body = std::to_string(i);
      m.properties.delivery_mode = delivery_mode_persistent;
      CO_ASSERT_OK(co_await c->get_publisher()->publish(std::move(m), count));
    }
    CO_ASSERT_TRUE(co_await c->get_publisher()->wait_idle(in(20s)));
    EXPECT_EQ(acked, total);
    for (int i = 0; i < 200 && got.size() < static_cast<std::size_t>(total); ++i) {
      co_await test::sleep_for(25ms);
    }
    EXPECT_EQ(got.size(), static_cast<std::size_t>(total));
    EXPECT_EQ(c->stats().connects, 1U);
    EXPECT_EQ(c->stats().reconnects, 0U);
    EXPECT_EQ(c->get_publisher()->stats().acked, static_cast<std::uint64_t>(total));

    // A channel of our own on the supervised connection, for cleanup.
    auto [oec, ch] = co_await c->open_channel();
    CO_ASSERT_OK(oec);
    auto [dec, left] = co_await ch->queue_delete(queue);
    EXPECT_FALSE(dec) << dec.message();
    co_await c->stop();
    EXPECT_EQ(c->state(), client_state::stopped);
    const std::vector<client_state> expected{client_state::connecting, client_state::connected,
                                             client_state::stopped};
    EXPECT_EQ(states, expected);
  });
}

TEST(amqp_client, topology_failure_is_retried_with_backoff_and_reported) {
  const auto queue = test::unique_name("sluice.test.mismatch");
  {
    test::independent_client other(test::broker_url());
    other.declare_queue(queue, true, "classic");
  }
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto c = client::create(io.get_executor(), options_for(test::broker_url()));
    c->set_topology(declare_queue(queue, "quorum"));
    c->start();
    EXPECT_FALSE(co_await c->wait_connected(in(1500ms)));
    EXPECT_NE(c->state(), client_state::connected);
    // Backoff 50, 100, 200, 400, 400...ms with jitter: a handful of attempts, not hundreds.
    EXPECT_GE(c->stats().connect_failures, 3U);
    EXPECT_LE(c->stats().connect_failures, 12U);
    EXPECT_EQ(c->last_error().error, reply_code::precondition_failed);
    EXPECT_NE(c->last_error().reply_text.find("inequivalent arg 'x-queue-type'"), std::string::npos)
        << c->last_error().reply_text;
    const auto start = std::chrono::steady_clock::now();
    co_await c->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_EQ(c->state(), client_state::stopped);
  });
  test::independent_client other(test::broker_url());
  other.delete_queue(queue);
}

TEST(amqp_client, a_broker_that_drops_every_connection_soon_gets_reconnects_with_backoff) {
  // Each connection is reset 100 ms after it is made, handshake and all done: without the
  // backoff for short-lived connections that is a reconnect every ~100 ms, forever (seen with a
  // message the broker refused, before such messages were checked).
  const url broker = test::broker_url();
  sluice::test::tcp_proxy proxy(broker.host, broker.port);
  proxy.drop_after(100ms);
  url through = broker;
  through.port = proxy.port();
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    client_options o = options_for(through);
    o.stable_after = 2s;
    auto c = client::create(io.get_executor(), o);
    c->start();
    asio::steady_timer wait(io.get_executor(), 3s);
    co_await wait.async_wait(asio::use_awaitable);
    // Backoff 50, 100, 200, 400, 400... ms with jitter, plus 100 ms per connection: 5 to 10
    // connections in 3 s, against about 28 with immediate reconnects.
    EXPECT_GE(c->stats().connects, 4U);
    EXPECT_LE(c->stats().connects, 12U);
    proxy.restore();
    // The connection made before the restore still dies at its 100 ms; the next one lasts.
    wait.expires_after(1500ms);
    co_await wait.async_wait(asio::use_awaitable);
    CO_ASSERT_TRUE(co_await c->wait_connected(in(5s)));
    const auto connects = c->stats().connects;
    wait.expires_after(700ms);
    co_await wait.async_wait(asio::use_awaitable);
    EXPECT_EQ(c->stats().connects, connects) << "a connection that lasts stays";
    co_await c->stop();
  });
}

TEST(amqp_client, wrong_credentials_keep_retrying_with_the_403_text) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto u = test::broker_url();
    u.password = "nope";
    auto c = client::create(io.get_executor(), options_for(u));
    c->start();
    EXPECT_FALSE(co_await c->wait_connected(in(500ms)));
    EXPECT_EQ(c->last_error().error, reply_code::access_refused);
    EXPECT_NE(c->last_error().reply_text.find("ACCESS_REFUSED"), std::string::npos);
    EXPECT_FALSE(c->ready());
    co_await c->stop();
  });
}

TEST(amqp_client, publish_waits_for_a_connection_then_times_out) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    url u;
    u.host = "127.0.0.1";
    u.port = 1;  // refused
    auto o = options_for(u);
    o.publisher.publish_timeout = 300ms;
    auto c = client::create(io.get_executor(), o);
    c->start();
    const auto start = std::chrono::steady_clock::now();
    const publish_callback never = [](publish_result) { ADD_FAILURE() << "must not settle"; };
    const auto ec = co_await c->get_publisher()->publish(outgoing_message{}, never);
    EXPECT_EQ(ec, errc::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 290ms);
    EXPECT_EQ(c->last_error().error, std::errc::connection_refused);
    co_await c->stop();
  });
}

}  // namespace
}  // namespace sluice::amqp
