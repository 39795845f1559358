#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "test_support.hpp"

namespace sluice::amqp {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::options_for;
using test::run;

TEST(amqp_connection, handshake_negotiates_and_closes_cleanly) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = options_for(test::broker_url());
    o.connection_name = "sluice-test-handshake";
    auto conn = connection::create(io.get_executor(), o);
    CO_ASSERT_OK(co_await conn->open());
    EXPECT_TRUE(conn->is_open());
    EXPECT_FALSE(conn->is_blocked());
    EXPECT_EQ(conn->frame_max(), 131072U);
    EXPECT_EQ(conn->heartbeat(), 30s);  // ours (30) is below RabbitMQ's default (60)
    EXPECT_GT(conn->channel_max(), 0);
    const auto* product = conn->server_properties().find("product");
    CO_ASSERT_TRUE(product != nullptr && product->get_if<std::string>() != nullptr);
    EXPECT_EQ(*product->get_if<std::string>(), "RabbitMQ");
    const auto* caps = conn->server_properties().find("capabilities");
    CO_ASSERT_TRUE(caps != nullptr && caps->get_if<field_table>() != nullptr);
    EXPECT_TRUE(caps->get_if<field_table>()->find("publisher_confirms") != nullptr);

    CO_ASSERT_OK(co_await conn->close());
    EXPECT_EQ(conn->current_state(), connection::state::closed);
    EXPECT_EQ(conn->reason().error, errc::connection_closed);
    EXPECT_EQ(conn->reason().reply_code, 0);
  });
}

TEST(amqp_connection, wrong_password_is_403_with_the_brokers_text) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    auto u = test::broker_url();
    u.password = "definitely-not-the-password";
    auto conn = connection::create(io.get_executor(), options_for(u));
    const auto ec = co_await conn->open();
    EXPECT_EQ(ec, reply_code::access_refused);
    EXPECT_EQ(ec.value(), 403);
    EXPECT_EQ(conn->reason().reply_code, 403);
    EXPECT_NE(conn->reason().reply_text.find("ACCESS_REFUSED - Login was refused"),
              std::string::npos)
        << conn->reason().reply_text;
    EXPECT_FALSE(conn->is_open());
  });
}

TEST(amqp_connection, unknown_vhost_is_reported_by_the_broker) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    auto u = test::broker_url();
    u.vhost = test::unique_name("no-such-vhost");
    auto conn = connection::create(io.get_executor(), options_for(u));
    const auto ec = co_await conn->open();
    EXPECT_TRUE(ec == reply_code::not_allowed || ec == reply_code::access_refused) << ec.message();
    EXPECT_NE(conn->reason().reply_text.find(u.vhost), std::string::npos)
        << conn->reason().reply_text;
  });
}

TEST(amqp_connection, refused_port_fails_fast) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    url u = test::broker_url();
    u.host = "127.0.0.1";
    u.port = 1;
    auto conn = connection::create(io.get_executor(), options_for(u));
    const auto start = std::chrono::steady_clock::now();
    const auto ec = co_await conn->open();
    EXPECT_EQ(ec, std::errc::connection_refused) << ec.message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  });
}

TEST(amqp_connection, silent_peer_hits_the_handshake_deadline) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    // A TCP server that accepts and reads but never answers the protocol header.
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket peer(io);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await acceptor.async_accept(peer, asio::as_tuple(asio::use_awaitable));
          char buf[64];
          for (;;) {
            auto [ec, n] = co_await peer.async_read_some(asio::buffer(buf),
                                                         asio::as_tuple(asio::use_awaitable));
            if (ec) {
              co_return;
            }
          }
        },
        asio::detached);
    url u;
    u.host = "127.0.0.1";
    u.port = acceptor.local_endpoint().port();
    auto o = options_for(u);
    o.connect_timeout = 300ms;
    auto conn = connection::create(io.get_executor(), o);
    const auto start = std::chrono::steady_clock::now();
    const auto ec = co_await conn->open();
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(ec, errc::timeout) << ec.message();
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 2s);
    acceptor.close();
    peer.close();
  });
}

TEST(amqp_connection, channel_error_closes_only_the_channel) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url()));
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    const auto missing = test::unique_name("missing");
    queue_options passive;
    passive.passive = true;
    auto [ec, ok] = co_await ch->queue_declare(missing, passive);
    EXPECT_EQ(ec, reply_code::not_found);
    EXPECT_EQ(ch->current_state(), channel::state::closed);
    EXPECT_EQ(ch->reason().reply_code, 404);
    EXPECT_NE(ch->reason().reply_text.find("NOT_FOUND - no queue '" + missing + "'"),
              std::string::npos)
        << ch->reason().reply_text;
    // Later calls on the closed channel fail at once with the same reason.
    auto [again, ok2] = co_await ch->queue_declare(missing, passive);
    EXPECT_EQ(again, reply_code::not_found);
    EXPECT_EQ(ch->basic_ack(1), reply_code::not_found);

    EXPECT_TRUE(conn->is_open());
    auto [cec2, ch2] = co_await conn->open_channel();
    CO_ASSERT_OK(cec2);
    queue_options temporary;
    temporary.durable = false;
    temporary.exclusive = true;
    temporary.auto_delete = true;
    auto [dec, declared] = co_await ch2->queue_declare("", temporary);
    CO_ASSERT_OK(dec);
    EXPECT_TRUE(declared.queue.starts_with("amq.gen-")) << declared.queue;
    CO_ASSERT_OK(co_await ch2->close());
    EXPECT_EQ(ch2->current_state(), channel::state::closed);
    CO_ASSERT_OK(co_await conn->close());
  });
}

TEST(amqp_connection, many_channels_and_reuse_of_closed_numbers) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url()));
    CO_ASSERT_OK(co_await conn->open());
    std::vector<std::shared_ptr<channel>> channels;
    for (int i = 0; i < 20; ++i) {
      auto [ec, ch] = co_await conn->open_channel();
      CO_ASSERT_OK(ec);
      channels.push_back(ch);
    }
    for (auto& ch : channels) {
      CO_ASSERT_OK(co_await ch->basic_qos(10));
      CO_ASSERT_OK(co_await ch->close());
    }
    auto [ec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(ec);
    CO_ASSERT_OK(co_await conn->close());
    // The connection closing closes its channels too.
    EXPECT_EQ(ch->current_state(), channel::state::closed);
    EXPECT_TRUE(ch->closed_with_connection());
  });
}

TEST(amqp_connection, idle_connection_survives_on_our_heartbeats) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = options_for(test::broker_url());
    o.heartbeat = 1s;
    auto conn = connection::create(io.get_executor(), o);
    CO_ASSERT_OK(co_await conn->open());
    EXPECT_EQ(conn->heartbeat(), 1s);
    // RabbitMQ drops a client that is silent for two intervals; ours must keep it up.
    co_await test::sleep_for(4500ms);
    EXPECT_TRUE(conn->is_open()) << conn->reason().to_string();
    auto [ec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(ec);
    CO_ASSERT_OK(co_await conn->close());
  });
}

TEST(amqp_connection, heartbeat_zero_disables_heartbeats) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = options_for(test::broker_url());
    o.heartbeat = 0s;
    auto conn = connection::create(io.get_executor(), o);
    CO_ASSERT_OK(co_await conn->open());
    EXPECT_EQ(conn->heartbeat(), 0s);
    CO_ASSERT_OK(co_await conn->close());
  });
}

TEST(amqp_connection, abort_fails_waiting_rpcs_and_listeners_run_once) {
  run([](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), options_for(test::broker_url()));
    CO_ASSERT_OK(co_await conn->open());
    int closed_calls = 0;
    conn->on_closed([&](const close_reason& r) {
      ++closed_calls;
      EXPECT_EQ(r.error, errc::heartbeat_timeout);
    });
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    int channel_closed_calls = 0;
    ch->on_closed([&](const close_reason&) { ++channel_closed_calls; });
    conn->abort(make_error_code(errc::heartbeat_timeout));
    conn->abort(make_error_code(errc::protocol_error));
    EXPECT_EQ(closed_calls, 1);
    EXPECT_EQ(channel_closed_calls, 1);
    EXPECT_EQ(conn->reason().error, errc::heartbeat_timeout);
    auto [ec, ok] = co_await ch->queue_declare("x");
    EXPECT_EQ(ec, errc::heartbeat_timeout);
    auto [oec, none] = co_await conn->open_channel();
    EXPECT_EQ(oec, errc::connection_closed);
    EXPECT_TRUE(co_await conn->wait_closed(std::chrono::steady_clock::now()));
  });
}

}  // namespace
}  // namespace sluice::amqp
