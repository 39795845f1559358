#include <algorithm>
#include <cstdio>
#include <set>

#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/publisher.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "independent_client.hpp"
#include "test_support.hpp"

namespace sluice::amqp {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::run;

// Lambdas are never written inside a co_await expression here: g++ 12 destroys such lambda
// temporaries twice. A named callback is safe.
const publish_callback ignore_result = [](publish_result) {};

connection_options options_for(const url& u) {
  connection_options o;
  o.server = u;
  o.connect_timeout = 5s;
  o.rpc_timeout = 10s;
  return o;
}

// A connection plus a confirm-mode channel with a publisher attached.
struct confirm_setup {
  std::shared_ptr<connection> conn;
  std::shared_ptr<channel> ch;
  std::shared_ptr<publisher> pub;
};

asio::awaitable<std::error_code> open_publisher(asio::io_context& io, confirm_setup& s,
                                                publisher_options options = {}) {
  s.conn = connection::create(io.get_executor(), options_for(test::broker_url()));
  if (auto ec = co_await s.conn->open()) {
    co_return ec;
  }
  auto [ec, ch] = co_await s.conn->open_channel();
  if (ec) {
    co_return ec;
  }
  s.ch = ch;
  if (auto sec = co_await s.ch->confirm_select()) {
    co_return sec;
  }
  s.pub = publisher::create(std::move(options));
  s.pub->attach(s.ch);
  co_return std::error_code{};
}

std::string message_id(int i) {
  return "msg-" + std::to_string(i);
}

std::string body_of(int i) {
  std::string body = R"({"seq":)" + std::to_string(i) + R"(,"pad":")";
  body.append(static_cast<std::size_t>(i % 97), 'x');
  body += "\"}";
  return body;
}

TEST(amqp_publisher, ten_thousand_persistent_confirms_arrive_intact) {
  constexpr int total = 10000;
  constexpr std::uint64_t timestamp = 1700000000;
  const auto queue = test::unique_name("sluice.test.confirms");
  std::size_t max_in_flight = 0;
  publisher_stats stats;
  run(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        confirm_setup s;
        publisher_options po;
        po.confirm_window = 1000;
        std::uint64_t observed = 0;
        po.observer = [&](const publish_result&) { ++observed; };
        CO_ASSERT_OK(co_await open_publisher(io, s, po));
        queue_options qo;
        qo.arguments.set("x-queue-type", "classic");
        auto [qec, qok] = co_await s.ch->queue_declare(queue, qo);
        CO_ASSERT_OK(qec);

        int acked = 0;
        int other = 0;
        for (int i = 0; i < total; ++i) {
          outgoing_message m;
          m.exchange = "";
          m.routing_key = queue;
          m.body = body_of(i);
          m.properties.message_id = message_id(i);
          m.properties.correlation_id = "corr-" + std::to_string(i);
          m.properties.content_type = "application/json";
          m.properties.delivery_mode = delivery_mode_persistent;
          m.properties.timestamp = timestamp + static_cast<std::uint64_t>(i);
          m.properties.headers =
              field_table{{"x-seq", std::int64_t{i}}, {"x-partition", "p" + std::to_string(i % 7)}};
          publish_callback on_result = [&](publish_result r) {
            if (r.outcome == publish_outcome::acked) {
              ++acked;
            } else {
              ++other;
            }
          };
          CO_ASSERT_OK(co_await s.pub->publish(std::move(m), std::move(on_result)));
          max_in_flight = std::max(max_in_flight, s.pub->in_flight());
        }
        EXPECT_TRUE(co_await s.pub->wait_idle(std::chrono::steady_clock::now() + 60s));
        EXPECT_EQ(acked, total);
        EXPECT_EQ(other, 0);
        EXPECT_EQ(observed, static_cast<std::uint64_t>(total));
        stats = s.pub->stats();
        CO_ASSERT_OK(co_await s.conn->close());
      },
      180s);
  EXPECT_LE(max_in_flight, 1000U);
  EXPECT_GE(max_in_flight, 100U) << "the window was never used: confirms are not pipelined";
  EXPECT_EQ(stats.published, static_cast<std::uint64_t>(total));
  EXPECT_EQ(stats.sent, static_cast<std::uint64_t>(total));
  EXPECT_EQ(stats.acked, static_cast<std::uint64_t>(total));
  EXPECT_EQ(stats.resent, 0U);
  // RabbitMQ confirms in batches (multiple=true); each batch must settle all it covers.
  EXPECT_LT(stats.confirm_frames, static_cast<std::uint64_t>(total));
  std::printf("10000 confirms arrived in %llu basic.ack frames\n",
              static_cast<unsigned long long>(stats.confirm_frames));

  test::independent_client other(test::broker_url());
  const auto got = other.consume(queue, total + 1, 3000ms);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(total));
  std::set<std::string> ids;
  for (int i = 0; i < total; ++i) {
    const auto& m = got[static_cast<std::size_t>(i)];
    SCOPED_TRACE(i);
    // One publisher, one classic queue: order is kept.
    ASSERT_EQ(m.message_id, message_id(i));
    EXPECT_EQ(m.body, body_of(i));
    EXPECT_EQ(m.correlation_id, "corr-" + std::to_string(i));
    EXPECT_EQ(m.content_type, "application/json");
    EXPECT_EQ(m.delivery_mode, 2);
    EXPECT_EQ(m.timestamp, timestamp + static_cast<std::uint64_t>(i));
    EXPECT_EQ(m.int_headers.at("x-seq"), i);
    EXPECT_EQ(m.string_headers.at("x-partition"), "p" + std::to_string(i % 7));
    EXPECT_EQ(m.routing_key, queue);
    EXPECT_FALSE(m.redelivered);
    ids.insert(*m.message_id);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(total));
  other.delete_queue(queue);
}

TEST(amqp_publisher, unroutable_mandatory_publish_is_reported_returned) {
  const auto queue = test::unique_name("sluice.test.routable");
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    confirm_setup s;
    CO_ASSERT_OK(co_await open_publisher(io, s));
    queue_options qo;
    qo.durable = false;
    qo.auto_delete = true;
    auto [qec, qok] = co_await s.ch->queue_declare(queue, qo);
    CO_ASSERT_OK(qec);
    CO_ASSERT_OK(co_await s.ch->queue_bind(queue, "amq.direct", "good"));

    // Interleaved routable and unroutable mandatory publishes to the same exchange: each
    // outcome must land on its own message.
    std::vector<publish_result> results(6);
    int settled = 0;
    for (int i = 0; i < 6; ++i) {
      outgoing_message m;
      m.exchange = "amq.direct";
      m.routing_key = i % 2 == 0 ? "good" : "nowhere-" + std::to_string(i);
      m.mandatory = true;
      m.body = "b" + std::to_string(i);
      m.properties.message_id = message_id(i);
      publish_callback on_result = [&, i](publish_result r) {
        results[static_cast<std::size_t>(i)] = std::move(r);
        ++settled;
      };
      CO_ASSERT_OK(co_await s.pub->publish(std::move(m), std::move(on_result)));
    }
    CO_ASSERT_TRUE(co_await s.pub->wait_idle(std::chrono::steady_clock::now() + 10s));
    EXPECT_EQ(settled, 6);
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (i % 2 == 0) {
        EXPECT_EQ(results[i].outcome, publish_outcome::acked) << i;
      } else {
        EXPECT_EQ(results[i].outcome, publish_outcome::returned) << i;
        EXPECT_EQ(results[i].error, reply_code::no_route) << i;
        EXPECT_EQ(results[i].reply_text, "NO_ROUTE") << i;
      }
    }
    EXPECT_EQ(s.pub->stats().returned, 3U);
    EXPECT_EQ(s.pub->stats().acked, 3U);

    // Without mandatory an unroutable message is simply acked (and dropped by the broker).
    outgoing_message lost;
    lost.exchange = "amq.direct";
    lost.routing_key = "nowhere";
    const auto r = co_await s.pub->publish_and_wait(lost);
    EXPECT_EQ(r.outcome, publish_outcome::acked);
    auto [dec, left] = co_await s.ch->queue_delete(queue);
    EXPECT_FALSE(dec);
    EXPECT_EQ(left, 3U);
    CO_ASSERT_OK(co_await s.conn->close());
  });
}

TEST(amqp_publisher, queue_rejecting_publishes_yields_nacks) {
  const auto queue = test::unique_name("sluice.test.reject");
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    confirm_setup s;
    CO_ASSERT_OK(co_await open_publisher(io, s));
    queue_options qo;
    qo.durable = false;
    qo.auto_delete = false;
    qo.arguments.set("x-max-length", std::int32_t{2});
    qo.arguments.set("x-overflow", "reject-publish");
    auto [qec, qok] = co_await s.ch->queue_declare(queue, qo);
    CO_ASSERT_OK(qec);
    std::vector<publish_outcome> outcomes;
    for (int i = 0; i < 5; ++i) {
      outgoing_message m;
      m.routing_key = queue;
      m.body = "n" + std::to_string(i);
      const auto r = co_await s.pub->publish_and_wait(std::move(m));
      outcomes.push_back(r.outcome);
    }
    const std::vector<publish_outcome> expected{publish_outcome::acked, publish_outcome::acked,
                                                publish_outcome::nacked, publish_outcome::nacked,
                                                publish_outcome::nacked};
    EXPECT_EQ(outcomes, expected);
    EXPECT_EQ(s.pub->stats().nacked, 3U);
    auto [dec, count] = co_await s.ch->queue_delete(queue);
    CO_ASSERT_OK(dec);
    EXPECT_EQ(count, 2U);
    CO_ASSERT_OK(co_await s.conn->close());
  });
}

TEST(amqp_publisher, missing_exchange_fails_unconfirmed_with_404) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    confirm_setup s;
    CO_ASSERT_OK(co_await open_publisher(io, s));
    outgoing_message m;
    m.exchange = test::unique_name("sluice.test.no-such-exchange");
    m.routing_key = "x";
    const auto r = co_await s.pub->publish_and_wait(m);
    EXPECT_EQ(r.outcome, publish_outcome::failed);
    EXPECT_EQ(r.error, reply_code::not_found);
    EXPECT_NE(r.reply_text.find("NOT_FOUND - no exchange"), std::string::npos) << r.reply_text;
    EXPECT_FALSE(s.pub->attached());
    EXPECT_EQ(s.pub->in_flight(), 0U);
    EXPECT_TRUE(s.conn->is_open());
    CO_ASSERT_OK(co_await s.conn->close());
  });
}

TEST(amqp_publisher, a_message_amqp_cannot_carry_is_refused_and_the_connection_stays) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    confirm_setup s;
    CO_ASSERT_OK(co_await open_publisher(io, s));
    outgoing_message too_long;
    too_long.routing_key = "x";
    too_long.properties.correlation_id = std::string(256, 'c');  // a short string holds 255
    const auto ec = co_await s.pub->publish(std::move(too_long), ignore_result);
    EXPECT_EQ(ec, errc::invalid_argument);
    outgoing_message long_key;
    long_key.routing_key = std::string(256, 'k');
    EXPECT_EQ(co_await s.pub->publish(std::move(long_key), ignore_result), errc::invalid_argument);
    EXPECT_EQ(s.pub->stats().unencodable, 2U);
    EXPECT_EQ(s.pub->in_flight(), 0U);
    // The connection and the channel are untouched: the next message goes out.
    outgoing_message fine;
    fine.exchange = "amq.direct";
    fine.routing_key = "nowhere";
    fine.properties.correlation_id = std::string(255, 'c');
    const auto r = co_await s.pub->publish_and_wait(std::move(fine));
    EXPECT_EQ(r.outcome, publish_outcome::acked);
    EXPECT_TRUE(s.conn->is_open());
    CO_ASSERT_OK(co_await s.conn->close());
  });
}

TEST(amqp_publisher, full_window_makes_publish_wait_and_time_out) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    // Detached publisher: nothing can be confirmed, so the window stays as it is.
    publisher_options po;
    po.confirm_window = 2;
    po.publish_timeout = 200ms;
    auto pub = publisher::create(po);
    const auto start = std::chrono::steady_clock::now();
    const auto ec = co_await pub->publish(outgoing_message{}, ignore_result);
    EXPECT_EQ(ec, errc::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);
    EXPECT_EQ(pub->stats().slot_timeouts, 1U);
    EXPECT_EQ(pub->in_flight(), 0U);

    // Attached: two fit, the third waits for a confirm that cannot come while the
    // connection is blocked... which we simulate with set_blocked before attaching.
    confirm_setup s;
    CO_ASSERT_OK(co_await open_publisher(io, s, po));
    s.pub->set_blocked(true);
    const auto blocked = co_await s.pub->publish(outgoing_message{}, ignore_result);
    EXPECT_EQ(blocked, errc::timeout);
    s.pub->set_blocked(false);

    int settled = 0;
    publish_callback count = [&](publish_result r) {
      EXPECT_EQ(r.outcome, publish_outcome::acked);
      ++settled;
    };
    for (int i = 0; i < 50; ++i) {
      outgoing_message m;
      m.exchange = "amq.fanout";  // bound to nothing: acked at once
      CO_ASSERT_OK(co_await s.pub->publish(std::move(m), count));
      EXPECT_LE(s.pub->in_flight(), 2U);
    }
    CO_ASSERT_TRUE(co_await s.pub->wait_idle(std::chrono::steady_clock::now() + 10s));
    EXPECT_EQ(settled, 50);
    CO_ASSERT_OK(co_await s.conn->close());
  });
}

TEST(amqp_publisher, byte_bound_limits_the_window_of_large_messages) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    publisher_options po;
    po.confirm_window = 1000;  // never the limit here
    po.confirm_window_bytes = 10'000;
    confirm_setup s;
    CO_ASSERT_OK(co_await open_publisher(io, s, po));
    int settled = 0;
    publish_callback count = [&](publish_result r) {
      EXPECT_EQ(r.outcome, publish_outcome::acked);
      ++settled;
    };
    std::size_t most_bytes = 0;
    std::size_t most_messages = 0;
    for (int i = 0; i < 100; ++i) {
      outgoing_message m;
      m.exchange = "amq.fanout";
      m.body.assign(3000, 'x');
      const std::size_t one = publisher::window_bytes(m);
      CO_ASSERT_OK(co_await s.pub->publish(std::move(m), count));
      // Admitted only while under the bound: at most the bound plus the one just admitted.
      EXPECT_LT(s.pub->in_flight_bytes(), po.confirm_window_bytes + one);
      most_bytes = std::max(most_bytes, s.pub->in_flight_bytes());
      most_messages = std::max(most_messages, s.pub->in_flight());
    }
    // publish() does not yield while there is room: the window did fill up to the bound.
    EXPECT_GE(most_bytes, po.confirm_window_bytes);
    EXPECT_LE(most_messages, 4U);
    CO_ASSERT_TRUE(co_await s.pub->wait_idle(std::chrono::steady_clock::now() + 10s));
    EXPECT_EQ(settled, 100);
    EXPECT_EQ(s.pub->in_flight_bytes(), 0U);
    CO_ASSERT_OK(co_await s.conn->close());
  });
}

TEST(amqp_publisher, close_fails_the_unconfirmed_and_the_waiting) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    publisher_options po;
    po.confirm_window = 1;
    po.publish_timeout = 5s;
    confirm_setup s;
    CO_ASSERT_OK(co_await open_publisher(io, s, po));
    s.pub->set_blocked(true);  // nothing goes out, nothing gets confirmed
    std::optional<std::error_code> waiter_result;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          waiter_result = co_await s.pub->publish(outgoing_message{}, ignore_result);
        },
        asio::detached);
    co_await test::sleep_for(50ms);
    EXPECT_FALSE(waiter_result.has_value());
    s.pub->close();
    co_await test::sleep_for(10ms);
    CO_ASSERT_TRUE(waiter_result.has_value());
    EXPECT_EQ(*waiter_result, errc::shutting_down);
    const auto after = co_await s.pub->publish(outgoing_message{}, ignore_result);
    EXPECT_EQ(after, errc::shutting_down);
    CO_ASSERT_OK(co_await s.conn->close());
  });
}

}  // namespace
}  // namespace sluice::amqp
