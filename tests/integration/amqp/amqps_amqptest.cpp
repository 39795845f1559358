// amqps:// against a real RabbitMQ with a TLS listener (a private node of the test's own, with a
// certificate from a throwaway CA): publish and consume through TLS, and the verification that
// refuses an untrusted certificate or a name the certificate does not carry.
#include <memory>

#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/connection.hpp"

#include "private_broker.hpp"
#include "sluice_test/tls_client.hpp"
#include "test_support.hpp"

namespace sluice::amqp {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Ports of this test's own node, next to the chaos test's 29772/29773 and below the ephemeral
// range.
constexpr std::uint16_t plain_port = 29782;
constexpr std::uint16_t dist_port = 29783;
constexpr std::uint16_t tls_port = 29784;

class amqps : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = std::make_unique<sluice::test::test_ca>();
    const auto issued = ca_->issue("broker");
    broker_ = std::make_unique<test::private_broker>(plain_port, dist_port, "amqpstls@localhost");
    broker_->enable_tls({tls_port, ca_->ca_file(), issued.cert_file, issued.key_file});
    broker_->start();
  }
  static void TearDownTestSuite() {
    broker_.reset();
    ca_.reset();
  }

  static url tls_url(const std::string& host = "localhost") {
    url u = broker_->broker_url();
    u.tls = true;
    u.host = host;
    u.port = tls_port;
    return u;
  }

  static inline std::unique_ptr<sluice::test::test_ca> ca_;
  static inline std::unique_ptr<test::private_broker> broker_;
};

TEST_F(amqps, publish_and_consume_through_tls) {
  test::run([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test::options_for(tls_url());
    o.ca_file = ca_->ca_file();
    auto conn = connection::create(io.get_executor(), o);
    CO_ASSERT_OK(co_await conn->open());
    auto [cec, ch] = co_await conn->open_channel();
    CO_ASSERT_OK(cec);
    const std::string queue = test::unique_name("amqps");
    queue_options qo;
    qo.exclusive = true;
    auto [qec, declared] = co_await ch->queue_declare(queue, qo);
    CO_ASSERT_OK(qec);
    CO_ASSERT_OK(co_await ch->confirm_select());
    std::size_t confirmed = 0;
    ch->set_confirm_handler([&](std::uint64_t, bool, bool ack) { confirmed += ack ? 1 : 0; });

    std::vector<std::string> received;
    delivery_handler on_delivery = [&](delivery d) { received.push_back(std::move(d.body)); };
    consume_options co;
    co.no_ack = true;
    auto [sec, tag] = co_await ch->basic_consume(queue, on_delivery, co);
    CO_ASSERT_OK(sec);

    // Small messages and one of 1 MiB, which spans many TLS records and several frames.
    const std::string big(1 << 20, 'x');
    for (int i = 0; i < 100; ++i)
      CO_ASSERT_OK(ch->basic_publish("", queue, {}, "m" + std::to_string(i)));
    CO_ASSERT_OK(ch->basic_publish("", queue, {}, big));
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (received.size() < 101 && std::chrono::steady_clock::now() < deadline)
      co_await test::sleep_for(20ms);
    CO_ASSERT_TRUE(received.size() == 101);
    EXPECT_EQ(received.front(), "m0");
    EXPECT_EQ(received[99], "m99");
    EXPECT_EQ(received.back(), big);
    EXPECT_GE(confirmed, 1u) << "the broker confirmed over TLS";
    CO_ASSERT_OK(co_await conn->close());
  });
}

TEST_F(amqps, a_certificate_the_system_store_does_not_trust_is_refused) {
  test::run([](asio::io_context& io) -> asio::awaitable<void> {
    auto conn = connection::create(io.get_executor(), test::options_for(tls_url()));
    const auto ec = co_await conn->open();
    EXPECT_EQ(ec, errc::handshake_failed) << ec.message();
    EXPECT_NE(conn->reason().reply_text.find("certificate verify failed"), std::string::npos)
        << conn->reason().reply_text;
    EXPECT_FALSE(conn->is_open());
  });
}

TEST_F(amqps, a_host_name_the_certificate_does_not_carry_is_refused) {
  test::run([](asio::io_context& io) -> asio::awaitable<void> {
    // 127.0.0.2 reaches the same listener, but the certificate names localhost and 127.0.0.1.
    auto o = test::options_for(tls_url("127.0.0.2"));
    o.ca_file = ca_->ca_file();
    auto conn = connection::create(io.get_executor(), o);
    const auto ec = co_await conn->open();
    EXPECT_EQ(ec, errc::handshake_failed) << ec.message();
    EXPECT_NE(conn->reason().reply_text.find("certificate verify failed"), std::string::npos)
        << conn->reason().reply_text;
  });
}

TEST_F(amqps, a_missing_ca_file_is_named) {
  test::run([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test::options_for(tls_url());
    o.ca_file = ca_->dir() + "/missing.pem";
    auto conn = connection::create(io.get_executor(), o);
    const auto ec = co_await conn->open();
    EXPECT_EQ(ec, errc::handshake_failed) << ec.message();
    EXPECT_FALSE(conn->is_open());
  });
}

}  // namespace
}  // namespace sluice::amqp
