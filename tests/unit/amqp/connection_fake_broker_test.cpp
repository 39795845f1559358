#include <deque>

#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/frame_codec.hpp"
#include "sluice/amqp/publisher.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

// The connection against a scripted broker on loopback: negotiation, what goes on the wire, and
// the failure paths a real RabbitMQ will not produce on demand (garbage frames, a silent peer,
// an unsupported mechanism). Needs no service, hence a unit test.

namespace sluice::amqp {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using asio::as_tuple;
using asio::use_awaitable;

#define CO_ASSERT_TRUE(cond)                             \
  if (!(cond)) {                                         \
    ADD_FAILURE() << "CO_ASSERT_TRUE(" #cond ") failed"; \
    co_return;                                           \
  }

// What the fake broker keeps of a frame the client sent.
struct seen {
  std::uint8_t type = 0;
  std::uint16_t channel = 0;
  amqp_method_number_t method = 0;
  std::string text;  // start-ok response, open vhost, body fragment
  std::string mechanism;
  field_table table;  // start-ok client properties
  std::uint32_t frame_max = 0;
  std::uint16_t heartbeat = 0;
  std::uint16_t channel_max = 0;
  std::uint64_t delivery_tag = 0;  // basic.ack / basic.nack
  bool multiple = false;
};

class fake_broker {
 public:
  explicit fake_broker(asio::io_context& io)
      : acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}), socket_(io), buffer_(65536) {}

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  asio::awaitable<bool> accept() {
    auto [ec] = co_await acceptor_.async_accept(socket_, as_tuple(use_awaitable));
    if (ec) {
      co_return false;
    }
    char header[8];
    auto [rec, n] =
        co_await asio::async_read(socket_, asio::buffer(header), as_tuple(use_awaitable));
    co_return !rec && std::string_view(header, 8) == protocol_header;
  }

  asio::awaitable<void> send_method(std::uint16_t channel, amqp_method_number_t id, void* args) {
    std::string out;
    EXPECT_FALSE(encoder_.append_method(out, channel, id, args));
    co_await asio::async_write(socket_, asio::buffer(out), as_tuple(use_awaitable));
  }

  asio::awaitable<void> deliver(std::uint16_t channel, std::string consumer_tag,
                                std::uint64_t delivery_tag, std::string body) {
    amqp_basic_deliver_t d{to_amqp_bytes(consumer_tag), delivery_tag, 0, to_amqp_bytes("ex"),
                           to_amqp_bytes("rk")};
    std::string out;
    EXPECT_FALSE(encoder_.append_method(out, channel, AMQP_BASIC_DELIVER_METHOD, &d));
    EXPECT_FALSE(encoder_.append_content(out, channel, message_properties{}, body));
    co_await send_raw(std::move(out));
  }

  asio::awaitable<void> send_raw(std::string bytes) {
    co_await asio::async_write(socket_, asio::buffer(bytes), as_tuple(use_awaitable));
  }

  // The next frame from the client, skipping heartbeats unless asked for; nullopt on EOF or
  // after `limit`.
  asio::awaitable<std::optional<seen>> next(bool heartbeats = false,
                                            std::chrono::milliseconds limit = 5000ms) {
    asio::steady_timer guard(socket_.get_executor(), limit);
    guard.async_wait([this](boost::system::error_code ec) {
      if (!ec) {
        socket_.cancel();
      }
    });
    while (true) {
      while (!inbox_.empty()) {
        seen f = std::move(inbox_.front());
        inbox_.pop_front();
        if (f.type == AMQP_FRAME_HEARTBEAT && !heartbeats) {
          continue;
        }
        guard.cancel();
        co_return f;
      }
      auto [ec, n] =
          co_await socket_.async_read_some(asio::buffer(buffer_), as_tuple(use_awaitable));
      if (ec) {
        guard.cancel();
        co_return std::nullopt;
      }
      EXPECT_FALSE(decoder_.feed(buffer_.data(), n, [this](const amqp_frame_t& f) {
        inbox_.push_back(capture(f));
        return true;
      }));
    }
  }

  // Runs the broker half of the handshake; returns the client's start-ok, tune-ok and open.
  asio::awaitable<std::vector<seen>> handshake(std::uint32_t frame_max, std::uint16_t heartbeat,
                                               std::string mechanisms = "PLAIN AMQPLAIN") {
    std::vector<seen> got;
    if (!co_await accept()) {
      co_return got;
    }
    const field_table server{{"product", "fake"}};
    amqp_connection_start_t start{0, 9, amqp_empty_table, to_amqp_bytes(mechanisms),
                                  to_amqp_bytes("en_US")};
    std::string out;
    EXPECT_FALSE(encoder_.append_method(out, 0, AMQP_CONNECTION_START_METHOD, &start,
                                        &start.server_properties, server));
    co_await send_raw(out);
    auto start_ok = co_await next();
    if (!start_ok) {
      co_return got;
    }
    got.push_back(*start_ok);
    amqp_connection_tune_t tune{10, frame_max, heartbeat};
    co_await send_method(0, AMQP_CONNECTION_TUNE_METHOD, &tune);
    auto tune_ok = co_await next();
    auto open = co_await next();
    if (!tune_ok || !open) {
      co_return got;
    }
    got.push_back(*tune_ok);
    got.push_back(*open);
    decoder_.tune(10, frame_max, heartbeat);
    encoder_.set_frame_max(frame_max);
    amqp_connection_open_ok_t ok{amqp_empty_bytes};
    co_await send_method(0, AMQP_CONNECTION_OPEN_OK_METHOD, &ok);
    co_return got;
  }

  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    acceptor_.close(ignored);
  }

 private:
  static seen capture(const amqp_frame_t& f) {
    seen s;
    s.type = f.frame_type;
    s.channel = f.channel;
    if (f.frame_type == AMQP_FRAME_BODY) {
      s.text = to_string(f.payload.body_fragment);
    }
    if (f.frame_type != AMQP_FRAME_METHOD) {
      return s;
    }
    s.method = f.payload.method.id;
    const void* d = f.payload.method.decoded;
    switch (s.method) {
      case AMQP_CONNECTION_START_OK_METHOD: {
        const auto* m = static_cast<const amqp_connection_start_ok_t*>(d);
        s.text = to_string(m->response);
        s.mechanism = to_string(m->mechanism);
        s.table = from_amqp_table(m->client_properties);
        break;
      }
      case AMQP_CONNECTION_TUNE_OK_METHOD: {
        const auto* m = static_cast<const amqp_connection_tune_ok_t*>(d);
        s.frame_max = m->frame_max;
        s.heartbeat = m->heartbeat;
        s.channel_max = m->channel_max;
        break;
      }
      case AMQP_CONNECTION_OPEN_METHOD:
        s.text = to_string(static_cast<const amqp_connection_open_t*>(d)->virtual_host);
        break;
      case AMQP_BASIC_ACK_METHOD: {
        const auto* m = static_cast<const amqp_basic_ack_t*>(d);
        s.delivery_tag = m->delivery_tag;
        s.multiple = m->multiple != 0;
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* m = static_cast<const amqp_basic_nack_t*>(d);
        s.delivery_tag = m->delivery_tag;
        s.multiple = m->multiple != 0;
        break;
      }
      default:
        break;
    }
    return s;
  }

  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::socket socket_;
  std::vector<std::uint8_t> buffer_;
  frame_encoder encoder_;
  frame_decoder decoder_;
  std::deque<seen> inbox_;
};

connection_options options_for(std::uint16_t port) {
  connection_options o;
  o.server.host = "127.0.0.1";
  o.server.port = port;
  o.server.user = "alice";
  o.server.password = "s3cret";
  o.server.vhost = "prod";
  o.connect_timeout = 3s;
  o.rpc_timeout = 2s;
  return o;
}

// Runs client and fake broker coroutines on one io_context until both are done.
void run_pair(
    const std::function<asio::awaitable<void>(asio::io_context&, fake_broker&)>& broker,
    const std::function<asio::awaitable<void>(asio::io_context&, std::uint16_t)>& client) {
  asio::io_context io;
  fake_broker fake(io);
  int done = 0;
  auto finish = [&](std::exception_ptr e) {
    ++done;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        ADD_FAILURE() << ex.what();
      }
    }
  };
  asio::co_spawn(io, broker(io, fake), finish);
  asio::co_spawn(io, client(io, fake.port()), finish);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (done < 2 && std::chrono::steady_clock::now() < deadline) {
    io.run_one_until(deadline);
  }
  EXPECT_EQ(done, 2) << "scenario did not finish";
  fake.close();
  io.run_for(3s);
  EXPECT_TRUE(io.stopped()) << "work left behind";
}

TEST(amqp_connection_fake_broker, handshake_negotiates_and_frames_respect_frame_max) {
  std::vector<seen> handshake;
  std::vector<seen> after;
  run_pair(
      [&](asio::io_context&, fake_broker& fake) -> asio::awaitable<void> {
        handshake = co_await fake.handshake(8192, 1);
        // channel.open, then a publish of 20000 bytes: method, header, 3 body frames.
        for (int i = 0; i < 6; ++i) {
          auto f = co_await fake.next();
          if (!f) {
            break;
          }
          if (f->method == AMQP_CHANNEL_OPEN_METHOD) {
            amqp_channel_open_ok_t ok{amqp_empty_bytes};
            co_await fake.send_method(f->channel, AMQP_CHANNEL_OPEN_OK_METHOD, &ok);
          }
          after.push_back(*f);
        }
        // Idle: the client must send heartbeats (1 s interval, sent every half interval).
        auto hb = co_await fake.next(true, 1500ms);
        EXPECT_TRUE(hb && hb->type == AMQP_FRAME_HEARTBEAT);
        amqp_connection_close_ok_t ok{};
        auto close = co_await fake.next();
        EXPECT_TRUE(close && close->method == AMQP_CONNECTION_CLOSE_METHOD);
        co_await fake.send_method(0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      },
      [&](asio::io_context& io, std::uint16_t port) -> asio::awaitable<void> {
        auto o = options_for(port);
        o.heartbeat = 30s;
        auto conn = connection::create(io.get_executor(), o);
        const auto ec = co_await conn->open();
        CO_ASSERT_TRUE(!ec);
        EXPECT_EQ(conn->frame_max(), 8192U);
        EXPECT_EQ(conn->heartbeat(), 1s);
        EXPECT_EQ(conn->channel_max(), 10);
        auto [cec, ch] = co_await conn->open_channel();
        CO_ASSERT_TRUE(!cec);
        EXPECT_EQ(ch->id(), 1);
        message_properties p;
        p.message_id = "m1";
        EXPECT_FALSE(ch->basic_publish("ex", "rk", p, std::string(20000, 'z')));
        co_await asio::steady_timer(io, 1200ms).async_wait(as_tuple(use_awaitable));
        EXPECT_FALSE(co_await conn->close());
      });

  ASSERT_EQ(handshake.size(), 3U);
  EXPECT_EQ(handshake[0].mechanism, "PLAIN");
  EXPECT_EQ(handshake[0].text, std::string("\0alice\0s3cret", 13));
  const auto* caps = handshake[0].table.find("capabilities");
  ASSERT_TRUE(caps && caps->get_if<field_table>());
  for (const char* cap : {"publisher_confirms", "basic.nack", "consumer_cancel_notify",
                          "connection.blocked", "authentication_failure_close"}) {
    const auto* v = caps->get_if<field_table>()->find(cap);
    ASSERT_TRUE(v && v->get_if<bool>()) << cap;
    EXPECT_TRUE(*v->get_if<bool>()) << cap;
  }
  EXPECT_EQ(handshake[1].frame_max, 8192U);
  EXPECT_EQ(handshake[1].heartbeat, 1);
  EXPECT_EQ(handshake[1].channel_max, 10);
  EXPECT_EQ(handshake[2].text, "prod");

  ASSERT_EQ(after.size(), 6U);
  EXPECT_EQ(after[0].method, AMQP_CHANNEL_OPEN_METHOD);
  EXPECT_EQ(after[1].method, AMQP_BASIC_PUBLISH_METHOD);
  EXPECT_EQ(after[2].type, AMQP_FRAME_HEADER);
  std::string body;
  for (std::size_t i = 3; i < after.size(); ++i) {
    EXPECT_EQ(after[i].type, AMQP_FRAME_BODY);
    EXPECT_LE(after[i].text.size(), 8192U - 8U);
    body += after[i].text;
  }
  EXPECT_EQ(body, std::string(20000, 'z'));
}

asio::awaitable<void> sleep_for(asio::io_context& io, std::chrono::milliseconds d) {
  asio::steady_timer timer(io, d);
  co_await timer.async_wait(as_tuple(use_awaitable));
}

// Acks recorded in one turn leave as one multiple ack; a nack leaves at once; close() sends the
// acks still recorded before channel.close (after it the broker would redeliver them).
TEST(amqp_connection_fake_broker, acks_coalesce_into_multiple_and_precede_channel_close) {
  std::vector<seen> settles;
  bool close_after_last_ack = false;
  bool first_flush_seen = false;
  run_pair(
      [&](asio::io_context&, fake_broker& fake) -> asio::awaitable<void> {
        co_await fake.handshake(131072, 0);
        bool closed = false;
        while (auto f = co_await fake.next()) {
          if (f->method == AMQP_CHANNEL_OPEN_METHOD) {
            amqp_channel_open_ok_t ok{amqp_empty_bytes};
            co_await fake.send_method(f->channel, AMQP_CHANNEL_OPEN_OK_METHOD, &ok);
          } else if (f->method == AMQP_BASIC_CONSUME_METHOD) {
            amqp_basic_consume_ok_t ok{to_amqp_bytes(std::string_view("c1"))};
            co_await fake.send_method(f->channel, AMQP_BASIC_CONSUME_OK_METHOD, &ok);
            for (std::uint64_t tag = 1; tag <= 5; ++tag) {
              co_await fake.deliver(f->channel, "c1", tag, "m" + std::to_string(tag));
            }
          } else if (f->method == AMQP_BASIC_ACK_METHOD || f->method == AMQP_BASIC_NACK_METHOD) {
            settles.push_back(*f);
            first_flush_seen = true;
          } else if (f->method == AMQP_CHANNEL_CLOSE_METHOD) {
            close_after_last_ack = !settles.empty() && settles.back().delivery_tag == 4;
            amqp_channel_close_ok_t ok{};
            co_await fake.send_method(f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
            closed = true;
          } else if (f->method == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_ok_t ok{};
            co_await fake.send_method(0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
            break;
          }
        }
        EXPECT_TRUE(closed);
      },
      [&](asio::io_context& io, std::uint16_t port) -> asio::awaitable<void> {
        auto conn = connection::create(io.get_executor(), options_for(port));
        CO_ASSERT_TRUE(!co_await conn->open());
        auto [cec, ch] = co_await conn->open_channel();
        CO_ASSERT_TRUE(!cec);
        std::vector<delivery> got;
        delivery_handler on_delivery = [&](delivery d) { got.push_back(std::move(d)); };
        consume_options options;
        options.consumer_tag = "c1";
        auto [ec, tag] = co_await ch->basic_consume("q", on_delivery, options);
        CO_ASSERT_TRUE(!ec);
        for (int i = 0; i < 300 && got.size() < 5; ++i) {
          co_await sleep_for(io, 10ms);
        }
        CO_ASSERT_TRUE(got.size() == 5);
        // Out of order, as concurrent deliveries finish.
        EXPECT_FALSE(got[1].ack());
        EXPECT_FALSE(got[0].ack());
        EXPECT_FALSE(got[2].ack());
        EXPECT_FALSE(got[4].nack(true));
        for (int i = 0; i < 300 && settles.size() < 2; ++i) {
          co_await sleep_for(io, 10ms);
        }
        EXPECT_TRUE(first_flush_seen);
        EXPECT_FALSE(got[3].ack());
        EXPECT_FALSE(co_await ch->close());
        EXPECT_FALSE(co_await conn->close());
      });
  ASSERT_EQ(settles.size(), 3U);
  // The nack left when it was made, before the writer's flush of the acks.
  EXPECT_EQ(settles[0].method, AMQP_BASIC_NACK_METHOD);
  EXPECT_EQ(settles[0].delivery_tag, 5U);
  EXPECT_EQ(settles[1].method, AMQP_BASIC_ACK_METHOD);
  EXPECT_EQ(settles[1].delivery_tag, 3U);
  EXPECT_TRUE(settles[1].multiple);
  EXPECT_EQ(settles[2].method, AMQP_BASIC_ACK_METHOD);
  EXPECT_EQ(settles[2].delivery_tag, 4U);
  EXPECT_FALSE(settles[2].multiple);
  EXPECT_TRUE(close_after_last_ack);
}

// A delivery for a consumer the channel no longer knows (its basic.cancel failed, say) is left
// unacked on purpose, so it is still outstanding on the broker: a multiple ack of the tags after
// it would ack it too, and the message would be gone without anyone having handled it.
TEST(amqp_connection_fake_broker, a_multiple_ack_never_covers_a_delivery_of_an_unknown_consumer) {
  std::vector<seen> settles;
  run_pair(
      [&](asio::io_context&, fake_broker& fake) -> asio::awaitable<void> {
        co_await fake.handshake(131072, 0);
        while (auto f = co_await fake.next()) {
          if (f->method == AMQP_CHANNEL_OPEN_METHOD) {
            amqp_channel_open_ok_t ok{amqp_empty_bytes};
            co_await fake.send_method(f->channel, AMQP_CHANNEL_OPEN_OK_METHOD, &ok);
          } else if (f->method == AMQP_BASIC_CONSUME_METHOD) {
            amqp_basic_consume_ok_t ok{to_amqp_bytes(std::string_view("c1"))};
            co_await fake.send_method(f->channel, AMQP_BASIC_CONSUME_OK_METHOD, &ok);
            co_await fake.deliver(f->channel, "gone", 1, "orphan");
            co_await fake.deliver(f->channel, "c1", 2, "m2");
            co_await fake.deliver(f->channel, "c1", 3, "m3");
          } else if (f->method == AMQP_BASIC_ACK_METHOD) {
            settles.push_back(*f);
          } else if (f->method == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_ok_t ok{};
            co_await fake.send_method(f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
          } else if (f->method == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_ok_t ok{};
            co_await fake.send_method(0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
            break;
          }
        }
      },
      [&](asio::io_context& io, std::uint16_t port) -> asio::awaitable<void> {
        auto conn = connection::create(io.get_executor(), options_for(port));
        CO_ASSERT_TRUE(!co_await conn->open());
        auto [cec, ch] = co_await conn->open_channel();
        CO_ASSERT_TRUE(!cec);
        std::vector<delivery> got;
        delivery_handler on_delivery = [&](delivery d) { got.push_back(std::move(d)); };
        consume_options options;
        options.consumer_tag = "c1";
        auto [ec, tag] = co_await ch->basic_consume("q", on_delivery, options);
        CO_ASSERT_TRUE(!ec);
        for (int i = 0; i < 300 && got.size() < 2; ++i) {
          co_await sleep_for(io, 10ms);
        }
        CO_ASSERT_TRUE(got.size() == 2);
        EXPECT_FALSE(got[0].ack());
        EXPECT_FALSE(got[1].ack());
        EXPECT_FALSE(co_await ch->close());
        EXPECT_FALSE(co_await conn->close());
      });
  ASSERT_EQ(settles.size(), 2U);
  EXPECT_EQ(settles[0].delivery_tag, 2U);
  EXPECT_FALSE(settles[0].multiple);
  EXPECT_EQ(settles[1].delivery_tag, 3U);
  EXPECT_FALSE(settles[1].multiple);
}

TEST(amqp_connection_fake_broker, blocked_and_unblocked_are_surfaced) {
  std::vector<bool> events;
  bool client_saw_blocked = false;
  run_pair(
      [&](asio::io_context& io, fake_broker& fake) -> asio::awaitable<void> {
        co_await fake.handshake(131072, 0);
        amqp_connection_blocked_t blocked{to_amqp_bytes("low on disk")};
        co_await fake.send_method(0, AMQP_CONNECTION_BLOCKED_METHOD, &blocked);
        for (int i = 0; i < 300 && !client_saw_blocked; ++i) {
          co_await sleep_for(io, 10ms);
        }
        amqp_connection_unblocked_t unblocked{};
        co_await fake.send_method(0, AMQP_CONNECTION_UNBLOCKED_METHOD, &unblocked);
        auto close = co_await fake.next();
        EXPECT_TRUE(close && close->method == AMQP_CONNECTION_CLOSE_METHOD);
        amqp_connection_close_ok_t ok{};
        co_await fake.send_method(0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      },
      [&](asio::io_context& io, std::uint16_t port) -> asio::awaitable<void> {
        auto conn = connection::create(io.get_executor(), options_for(port));
        conn->on_blocked([&](bool b) { events.push_back(b); });
        CO_ASSERT_TRUE(!co_await conn->open());
        for (int i = 0; i < 300 && !conn->is_blocked(); ++i) {
          co_await sleep_for(io, 10ms);
        }
        EXPECT_TRUE(conn->is_blocked());
        EXPECT_EQ(conn->blocked_reason(), "low on disk");
        client_saw_blocked = true;
        for (int i = 0; i < 300 && conn->is_blocked(); ++i) {
          co_await sleep_for(io, 10ms);
        }
        EXPECT_FALSE(conn->is_blocked());
        EXPECT_FALSE(co_await conn->close());
      });
  EXPECT_EQ(events, (std::vector<bool>{true, false}));
}

TEST(amqp_connection_fake_broker, silent_broker_is_detected_by_heartbeat) {
  run_pair(
      [&](asio::io_context&, fake_broker& fake) -> asio::awaitable<void> {
        co_await fake.handshake(131072, 1);
        // Say nothing, but keep reading so the client's writes never stall.
        while (co_await fake.next(true, 5000ms)) {
        }
      },
      [&](asio::io_context& io, std::uint16_t port) -> asio::awaitable<void> {
        auto conn = connection::create(io.get_executor(), options_for(port));
        CO_ASSERT_TRUE(!co_await conn->open());
        const auto start = std::chrono::steady_clock::now();
        EXPECT_TRUE(co_await conn->wait_closed(start + 5s));
        const auto took = std::chrono::steady_clock::now() - start;
        EXPECT_EQ(conn->reason().error, errc::heartbeat_timeout);
        EXPECT_GE(took, 1500ms);
        EXPECT_LE(took, 3000ms);
      });
}

TEST(amqp_connection_fake_broker, broker_close_is_answered_and_reported) {
  std::optional<seen> reply;
  run_pair(
      [&](asio::io_context&, fake_broker& fake) -> asio::awaitable<void> {
        co_await fake.handshake(131072, 0);
        const std::string text = "CONNECTION_FORCED - broker forced connection closure";
        amqp_connection_close_t close{320, to_amqp_bytes(text), 0, 0};
        co_await fake.send_method(0, AMQP_CONNECTION_CLOSE_METHOD, &close);
        while (auto f = co_await fake.next()) {
          if (f->method == AMQP_CONNECTION_CLOSE_OK_METHOD) {
            reply = f;
            break;
          }
        }
      },
      [&](asio::io_context& io, std::uint16_t port) -> asio::awaitable<void> {
        auto conn = connection::create(io.get_executor(), options_for(port));
        CO_ASSERT_TRUE(!co_await conn->open());
        // channel.open is never answered; the broker's close ends it.
        auto [cec, ch] = co_await conn->open_channel();
        EXPECT_EQ(cec, reply_code::connection_forced);
        EXPECT_TRUE(co_await conn->wait_closed(std::chrono::steady_clock::now() + 2s));
        EXPECT_EQ(conn->reason().reply_code, 320);
        EXPECT_EQ(conn->reason().reply_text,
                  "CONNECTION_FORCED - broker forced connection closure");
      });
  EXPECT_TRUE(reply.has_value()) << "no connection.close-ok from the client";
}

TEST(amqp_connection_fake_broker, garbage_frame_is_a_protocol_error) {
  run_pair(
      [&](asio::io_context&, fake_broker& fake) -> asio::awaitable<void> {
        co_await fake.handshake(131072, 0);
        // A method frame whose end octet is wrong.
        co_await fake.send_raw(std::string("\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x33\x00", 12));
        while (co_await fake.next(true, 3000ms)) {
        }
      },
      [&](asio::io_context& io, std::uint16_t port) -> asio::awaitable<void> {
        auto conn = connection::create(io.get_executor(), options_for(port));
        CO_ASSERT_TRUE(!co_await conn->open());
        EXPECT_TRUE(co_await conn->wait_closed(std::chrono::steady_clock::now() + 2s));
        EXPECT_EQ(conn->reason().error, errc::protocol_error);
      });
}

TEST(amqp_connection_fake_broker, broker_without_plain_is_refused) {
  run_pair(
      [&](asio::io_context&, fake_broker& fake) -> asio::awaitable<void> {
        const auto got = co_await fake.handshake(131072, 0, "AMQPLAIN EXTERNAL");
        EXPECT_TRUE(got.empty());  // the client hung up instead of answering start
      },
      [&](asio::io_context& io, std::uint16_t port) -> asio::awaitable<void> {
        auto conn = connection::create(io.get_executor(), options_for(port));
        EXPECT_EQ(co_await conn->open(), errc::unsupported_mechanism);
      });
}

}  // namespace
}  // namespace sluice::amqp
