#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/publisher.hpp"

#include "independent_client.hpp"
#include "test_support.hpp"

namespace sluice::amqp {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::options_for;
using test::run;

queue_options typed(const std::string& type) {
  queue_options o;
  o.durable = true;
  o.arguments.set("x-queue-type", type);
  return o;
}

TEST(amqp_topology, quorum_and_classic_queues_behind_a_fanout_exchange) {
  const auto exchange = test::unique_name("sluice.test.fanout");
  const auto quorum = test::unique_name("sluice.test.quorum");
  const auto classic = test::unique_name("sluice.test.classic");
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    CO_ASSERT_OK(co_await ch->exchange_declare(exchange, "fanout"));
    auto [qec, qok] = co_await ch->queue_declare(quorum, typed("quorum"));
    CO_ASSERT_OK(qec);
    EXPECT_EQ(qok.queue, quorum);
    EXPECT_EQ(qok.message_count, 0U);
    auto [cqec, cqok] = co_await ch->queue_declare(classic, typed("classic"));
    CO_ASSERT_OK(cqec);
    CO_ASSERT_OK(co_await ch->queue_bind(quorum, exchange, ""));
    CO_ASSERT_OK(co_await ch->queue_bind(classic, exchange, ""));
    // Declaring again with the same arguments is a no-op, as the reconnect topology relies on.
    auto [again, again_ok] = co_await ch->queue_declare(quorum, typed("quorum"));
    CO_ASSERT_OK(again);
    CO_ASSERT_OK(co_await ch->exchange_declare(exchange, "fanout"));

    CO_ASSERT_OK(co_await ch->confirm_select());
    auto pub = publisher::create();
    pub->attach(ch);
    outgoing_message m;
    m.exchange = exchange;
    m.body = R"({"hello":"fanout"})";
    m.properties.delivery_mode = delivery_mode_persistent;
    const auto result = co_await pub->publish_and_wait(m);
    EXPECT_EQ(result.outcome, publish_outcome::acked) << result.error.message();

    // queue.declare-ok counts what the queue holds (quorum counts may lag a moment).
    auto [pec, pok] = co_await ch->queue_declare(classic, typed("classic"));
    CO_ASSERT_OK(pec);
    EXPECT_EQ(pok.message_count, 1U);
    CO_ASSERT_OK(co_await conn->close());
  });

  test::independent_client other(test::broker_url());
  for (const auto& q : {quorum, classic}) {
    const auto got = other.consume(q, 1, 3000ms);
    ASSERT_EQ(got.size(), 1U) << q;
    EXPECT_EQ(got[0].body, R"({"hello":"fanout"})");
    EXPECT_EQ(got[0].exchange, exchange);
  }

  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    CO_ASSERT_OK(co_await ch->queue_unbind(classic, exchange, ""));
    auto [dq, dq_count] = co_await ch->queue_delete(quorum);
    CO_ASSERT_OK(dq);
    auto [dc, dc_count] = co_await ch->queue_delete(classic);
    CO_ASSERT_OK(dc);
    EXPECT_EQ(dc_count, 0U);
    CO_ASSERT_OK(co_await ch->exchange_delete(exchange));
    CO_ASSERT_OK(co_await conn->close());
  });
}

TEST(amqp_topology, redeclaring_with_another_queue_type_is_406_with_text) {
  const auto name = test::unique_name("sluice.test.type");
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    auto [qec, qok] = co_await ch->queue_declare(name, typed("classic"));
    CO_ASSERT_OK(qec);

    auto [ec, ok] = co_await ch->queue_declare(name, typed("quorum"));
    EXPECT_EQ(ec, reply_code::precondition_failed);
    EXPECT_EQ(ec.value(), 406);
    EXPECT_EQ(ch->reason().reply_code, 406);
    EXPECT_NE(ch->reason().reply_text.find("PRECONDITION_FAILED - inequivalent arg 'x-queue-type'"),
              std::string::npos)
        << ch->reason().reply_text;
    EXPECT_EQ(ch->reason().class_id, 50);   // queue
    EXPECT_EQ(ch->reason().method_id, 10);  // declare

    auto [cec2, ch2] = co_await conn->open_channel();
    CO_ASSERT_OK(cec2);
    auto [xec, xcount] = co_await ch2->queue_delete(name);
    CO_ASSERT_OK(xec);
    CO_ASSERT_OK(co_await conn->close());
  });
}

TEST(amqp_topology, redeclaring_an_exchange_with_another_type_is_406) {
  const auto name = test::unique_name("sluice.test.exchange");
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    exchange_options temporary;
    temporary.durable = false;
    temporary.auto_delete = true;
    CO_ASSERT_OK(co_await ch->exchange_declare(name, "headers", temporary));
    const auto ec = co_await ch->exchange_declare(name, "fanout", temporary);
    EXPECT_EQ(ec, reply_code::precondition_failed);
    EXPECT_NE(ch->reason().reply_text.find("inequivalent arg 'type'"), std::string::npos)
        << ch->reason().reply_text;
    auto [cec2, ch2] = co_await conn->open_channel();
    CO_ASSERT_OK(cec2);
    CO_ASSERT_OK(co_await ch2->exchange_delete(name));
    CO_ASSERT_OK(co_await conn->close());
  });
}

TEST(amqp_topology, purge_reports_the_number_of_messages) {
  const auto name = test::unique_name("sluice.test.purge");
  {
    test::independent_client other(test::broker_url());
    other.declare_queue(name, true);
    for (int i = 0; i < 5; ++i) {
      other.publish("", name, "m" + std::to_string(i));
    }
  }
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url(), 10s));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    std::uint32_t count = 0;
    // The independent client's publishes are not confirmed; wait until they are all queued.
    for (int tries = 0; tries < 50 && count < 5; ++tries) {
      queue_options passive;
      passive.passive = true;
      auto [ec, ok] = co_await ch->queue_declare(name, passive);
      CO_ASSERT_OK(ec);
      count = ok.message_count;
      if (count < 5) {
        co_await test::sleep_for(50ms);
      }
    }
    auto [pec, purged] = co_await ch->queue_purge(name);
    CO_ASSERT_OK(pec);
    EXPECT_EQ(purged, 5U);
    auto [dec, remaining] = co_await ch->queue_delete(name);
    CO_ASSERT_OK(dec);
    EXPECT_EQ(remaining, 0U);
    CO_ASSERT_OK(co_await conn->close());
  });
}

}  // namespace
}  // namespace sluice::amqp
