#include <thread>

#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/consumer.hpp"

#include "independent_client.hpp"
#include "test_support.hpp"

namespace sluice::amqp {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::options_for;
using test::run;

// Lambdas are never written inside a co_await expression here: g++ 12 destroys capturing
// lambda temporaries there twice. They are named first.

std::chrono::steady_clock::time_point in(std::chrono::steady_clock::duration d) {
  return std::chrono::steady_clock::now() + d;
}

// Declares `queue` and fills it with `count` messages from rabbitmq-c's own client.
void fill_from_independent_client(const std::string& queue, int count) {
  test::independent_client other(test::broker_url());
  other.declare_queue(queue, true, "classic");
  for (int i = 0; i < count; ++i) {
    test::independent_properties p;
    p.message_id = "ind-" + std::to_string(i);
    p.content_type = "application/json";
    p.delivery_mode = 2;
    p.correlation_id = "c" + std::to_string(i);
    p.string_headers["x-origin"] = "rabbitmq-c";
    other.publish("", queue, R"({"n":)" + std::to_string(i) + "}", p);
  }
  for (int tries = 0; tries < 100 && other.message_count(queue) < static_cast<std::uint32_t>(count);
       ++tries) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(other.message_count(queue), static_cast<std::uint32_t>(count));
}

void delete_queue(const std::string& queue) {
  test::independent_client other(test::broker_url());
  other.delete_queue(queue);
}

TEST(amqp_consumer, callback_consumer_with_prefetch_gets_every_message_in_order) {
  constexpr int total = 500;
  constexpr std::uint16_t prefetch = 50;
  const auto queue = test::unique_name("sluice.test.consume");
  fill_from_independent_client(queue, total);
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    CO_ASSERT_OK(co_await ch->basic_qos(prefetch));

    std::vector<delivery> unacked;
    std::vector<std::string> bodies;
    std::size_t max_unacked = 0;
    int bad = 0;
    delivery_handler on_delivery = [&](delivery d) {
      const int n = static_cast<int>(bodies.size());
      if (d.properties.message_id != "ind-" + std::to_string(n) ||
          d.properties.content_type != "application/json" || d.properties.delivery_mode != 2 ||
          d.properties.correlation_id != "c" + std::to_string(n) || !d.properties.headers ||
          d.properties.headers->find("x-origin") == nullptr ||
          *d.properties.headers->find("x-origin")->get_if<std::string>() != "rabbitmq-c" ||
          d.routing_key != queue || d.redelivered || d.delivery_tag == 0) {
        ++bad;
      }
      bodies.push_back(d.body);
      unacked.push_back(std::move(d));
      max_unacked = std::max(max_unacked, unacked.size());
    };
    auto [ec, tag] = co_await ch->basic_consume(queue, on_delivery);
    CO_ASSERT_OK(ec);
    EXPECT_FALSE(tag.empty());
    // Ack in slow batches so that prefetch, not our speed, limits what is outstanding.
    const auto deadline = in(30s);
    while (bodies.size() < static_cast<std::size_t>(total) &&
           std::chrono::steady_clock::now() < deadline) {
      co_await test::sleep_for(5ms);
      for (const auto& d : unacked) {
        EXPECT_FALSE(d.ack());
      }
      unacked.clear();
    }
    EXPECT_EQ(bodies.size(), static_cast<std::size_t>(total));
    EXPECT_EQ(bad, 0);
    EXPECT_LE(max_unacked, static_cast<std::size_t>(prefetch));
    EXPECT_GE(max_unacked, static_cast<std::size_t>(prefetch) / 2);
    for (int i = 0; i < total && i < static_cast<int>(bodies.size()); ++i) {
      EXPECT_EQ(bodies[static_cast<std::size_t>(i)], R"({"n":)" + std::to_string(i) + "}");
    }
    CO_ASSERT_OK(co_await ch->basic_cancel(tag));
    queue_options passive;
    passive.passive = true;
    auto [pec, pok] = co_await ch->queue_declare(queue, passive);
    CO_ASSERT_OK(pec);
    EXPECT_EQ(pok.message_count, 0U);  // everything acked
    CO_ASSERT_OK(co_await conn->close());
  });
  delete_queue(queue);
}

TEST(amqp_consumer, prefetch_holds_back_until_acked) {
  const auto queue = test::unique_name("sluice.test.prefetch");
  fill_from_independent_client(queue, 20);
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    CO_ASSERT_OK(co_await ch->basic_qos(5));
    auto [sec, c] = co_await consumer::start(ch, queue);
    CO_ASSERT_OK(sec);
    std::vector<delivery> held;
    for (int i = 0; i < 5; ++i) {
      auto [rec, d] = co_await c->receive(in(5s));
      CO_ASSERT_OK(rec);
      EXPECT_EQ(d.properties.message_id, "ind-" + std::to_string(i));
      held.push_back(std::move(d));
    }
    auto [tec, none] = co_await c->receive(in(300ms));
    EXPECT_EQ(tec, errc::timeout);
    EXPECT_EQ(c->buffered(), 0U);
    CO_ASSERT_OK(held.front().ack());
    auto [rec, sixth] = co_await c->receive(in(5s));
    CO_ASSERT_OK(rec);
    EXPECT_EQ(sixth.properties.message_id, "ind-5");
    CO_ASSERT_OK(co_await c->cancel());
    auto [after, gone] = co_await c->receive(in(1s));
    EXPECT_EQ(after, errc::consumer_cancelled);
    CO_ASSERT_OK(co_await conn->close());
    // Unacked deliveries of the closed channel went back to the queue.
    EXPECT_EQ(held[1].ack(), errc::connection_closed);
  });
  test::independent_client other(test::broker_url());
  EXPECT_EQ(other.message_count(queue), 19U);
  other.delete_queue(queue);
}

TEST(amqp_consumer, nack_requeues_and_reject_drops) {
  const auto queue = test::unique_name("sluice.test.nack");
  fill_from_independent_client(queue, 1);
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    CO_ASSERT_OK(co_await ch->basic_qos(1));
    auto [sec, c] = co_await consumer::start(ch, queue);
    CO_ASSERT_OK(sec);
    auto [r1, first] = co_await c->receive(in(5s));
    CO_ASSERT_OK(r1);
    EXPECT_FALSE(first.redelivered);
    CO_ASSERT_OK(first.nack(true));
    auto [r2, again] = co_await c->receive(in(5s));
    CO_ASSERT_OK(r2);
    EXPECT_TRUE(again.redelivered);
    EXPECT_EQ(again.body, first.body);
    CO_ASSERT_OK(again.reject(false));
    auto [r3, none] = co_await c->receive(in(300ms));
    EXPECT_EQ(r3, errc::timeout);
    queue_options passive;
    passive.passive = true;
    auto [pec, pok] = co_await ch->queue_declare(queue, passive);
    CO_ASSERT_OK(pec);
    EXPECT_EQ(pok.message_count, 0U);
    CO_ASSERT_OK(co_await conn->close());
  });
  delete_queue(queue);
}

TEST(amqp_consumer, deleting_the_queue_cancels_the_consumer) {
  const auto queue = test::unique_name("sluice.test.cancelled");
  fill_from_independent_client(queue, 0);
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    std::optional<close_reason> ended;
    delivery_handler ignore = [](delivery) {};
    consumer_end_handler on_end = [&](const close_reason& r) { ended = r; };
    auto [ec, tag] = co_await ch->basic_consume(queue, ignore, consume_options{}, on_end);
    CO_ASSERT_OK(ec);
    {
      // The independent client deletes it; the broker tells us with basic.cancel.
      test::independent_client other(test::broker_url());
      other.delete_queue(queue);
    }
    for (int i = 0; i < 100 && !ended; ++i) {
      co_await test::sleep_for(20ms);
    }
    CO_ASSERT_TRUE(ended.has_value());
    EXPECT_EQ(ended->error, errc::consumer_cancelled);
    EXPECT_TRUE(ch->is_open());  // a cancel is not a channel error
    CO_ASSERT_OK(co_await conn->close());
  });
}

TEST(amqp_consumer, large_message_spans_many_frames) {
  const auto queue = test::unique_name("sluice.test.large");
  std::string big(1'000'000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>(i * 7 % 251);
  }
  {
    test::independent_client other(test::broker_url());
    other.declare_queue(queue, false);
    other.publish("", queue, big);
  }
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    auto [sec, c] = co_await consumer::start(ch, queue);
    CO_ASSERT_OK(sec);
    auto [rec, d] = co_await c->receive(in(10s));
    CO_ASSERT_OK(rec);
    EXPECT_EQ(d.body.size(), big.size());
    EXPECT_TRUE(d.body == big);
    CO_ASSERT_OK(d.ack());
    CO_ASSERT_OK(co_await conn->close());
  });
  delete_queue(queue);
}

}  // namespace
}  // namespace sluice::amqp
