#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <thread>

#include "sluice/amqp/client.hpp"

#include "independent_client.hpp"
#include "private_broker.hpp"
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

// RABBITMQ_QUEUE_TYPE as the application reads it; quorum unless told otherwise.
std::string queue_type() {
  const char* t = std::getenv("RABBITMQ_QUEUE_TYPE");
  return t != nullptr && std::string(t) == "classic" ? "classic" : "quorum";
}

class amqp_chaos : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      broker_ = std::make_unique<test::private_broker>();
      const auto start = std::chrono::steady_clock::now();
      broker_->start();
      std::printf("private broker up in %lld ms\n",
                  static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - start)
                                             .count()));
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { broker_.reset(); }

  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << "private broker did not start: " << setup_error_;
    ASSERT_TRUE(broker_ && broker_->running());
  }

  static client_options options() {
    client_options o;
    o.connection.server = broker_->broker_url();
    o.connection.heartbeat = 2s;
    o.connection.connect_timeout = 3s;
    o.connection.rpc_timeout = 10s;
    o.connection.connection_name = "sluice-chaos";
    o.reconnect_initial_delay = 100ms;
    o.reconnect_max_delay = 1s;
    o.resource_retry_interval = 200ms;
    o.publisher.confirm_window = 1000;
    o.publisher.publish_timeout = 120s;
    return o;
  }

  static inline std::unique_ptr<test::private_broker> broker_;
  static inline std::string setup_error_;
};

TEST_F(amqp_chaos, heartbeat_detects_a_paused_broker_within_two_intervals) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    connection_options o;
    o.server = broker_->broker_url();
    o.heartbeat = 1s;
    auto conn = connection::create(io.get_executor(), o);
    CO_ASSERT_OK(co_await conn->open());
    CO_ASSERT_TRUE(conn->heartbeat() == 1s);
    broker_->pause();
    const auto start = std::chrono::steady_clock::now();
    const bool closed = co_await conn->wait_closed(in(10s));
    const auto took = std::chrono::steady_clock::now() - start;
    broker_->resume();
    CO_ASSERT_TRUE(closed);
    EXPECT_EQ(conn->reason().error, errc::heartbeat_timeout);
    // Silence is noticed after two intervals; the check runs every half interval.
    EXPECT_GE(took, 1500ms);
    EXPECT_LE(took, 3500ms);
    std::printf("dead peer detected after %lld ms (heartbeat 1 s)\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  });
}

TEST_F(amqp_chaos, supervisor_reconnects_after_a_paused_broker_resumes) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto o = options();
    o.connection.heartbeat = 1s;
    o.connection.connect_timeout = 1s;
    auto c = client::create(io.get_executor(), o);
    std::vector<client_state> states;
    c->on_state_change([&](client_state s) { states.push_back(s); });
    c->start();
    CO_ASSERT_TRUE(co_await c->wait_connected(in(10s)));
    broker_->pause();
    for (int i = 0; i < 100 && c->state() == client_state::connected; ++i) {
      co_await test::sleep_for(50ms);
    }
    EXPECT_EQ(c->state(), client_state::reconnecting);
    EXPECT_FALSE(c->ready());
    co_await test::sleep_for(1500ms);  // attempts against the paused broker time out
    broker_->resume();
    EXPECT_TRUE(co_await c->wait_connected(in(20s)));
    EXPECT_EQ(c->stats().reconnects, 1U);
    EXPECT_EQ(c->stats().connection_losses, 1U);
    EXPECT_GE(c->stats().connect_failures, 1U);
    co_await c->stop();
    CO_ASSERT_TRUE(states.size() >= 4);
    EXPECT_EQ(states[0], client_state::connecting);
    EXPECT_EQ(states[1], client_state::connected);
    EXPECT_EQ(states[2], client_state::reconnecting);
    EXPECT_EQ(states.back(), client_state::stopped);
  });
}

// Publishes persistent messages while `chaos` runs on another thread (started once `trigger`
// messages are confirmed), keeps publishing until the chaos is over and `after` more went out,
// then counts with the independent client what reached the queue.
struct outage_result {
  int published = 0;
  int acked = 0;
  int not_acked = 0;
  std::size_t received = 0;
  std::size_t unique = 0;
  client_stats client;
  publisher_stats publisher;
};

outage_result publish_through_outage(const client_options& o, int trigger, int after,
                                     const std::function<void()>& chaos) {
  const auto queue = test::unique_name("sluice.test.chaos");
  outage_result result;
  std::atomic<int> acked{0};
  std::atomic<bool> chaos_done{false};
  std::thread chaos_thread;
  run(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto c = client::create(io.get_executor(), o);
        c->set_topology([queue](channel& ch) -> asio::awaitable<std::error_code> {
          queue_options qo;
          qo.arguments.set("x-queue-type", queue_type());
          auto [ec, ok] = co_await ch.queue_declare(queue, qo);
          co_return ec;
        });
        c->start();
        CO_ASSERT_TRUE(co_await c->wait_connected(in(20s)));
        publish_callback count = [&](publish_result r) {
          if (r.outcome == publish_outcome::acked) {
            ++acked;
          } else {
            ++result.not_acked;
          }
        };
        constexpr int limit = 1'000'000;
        int stop_at = limit;
        for (int i = 0; i < stop_at; ++i) {
          if (i == trigger) {
            chaos_thread = std::thread([&] {
              const auto give_up = in(60s);
              while (acked.load() < trigger / 2 && std::chrono::steady_clock::now() < give_up) {
                std::this_thread::sleep_for(1ms);
              }
              chaos();
              chaos_done = true;
            });
          }
          if (stop_at == limit && chaos_done) {
            stop_at = i + after;
          }
          outgoing_message m;
          m.routing_key = queue;
          m.properties.message_id = "chaos-" + std::to_string(i);
          m.properties.delivery_mode = delivery_mode_persistent;
          m.body = std::string(256, static_cast<char>('a' + i % 26));
          CO_ASSERT_OK(co_await c->get_publisher()->publish(std::move(m), count));
          result.published = i + 1;
        }
        EXPECT_TRUE(co_await c->get_publisher()->wait_idle(in(120s)));
        result.client = c->stats();
        result.publisher = c->get_publisher()->stats();
        co_await c->stop();
      },
      300s);
  if (chaos_thread.joinable()) {
    chaos_thread.join();
  }
  result.acked = acked.load();
  test::independent_client other(o.connection.server);
  const auto got = other.consume(queue, static_cast<std::size_t>(result.published) * 2, 5000ms);
  std::map<std::string, int> seen;
  for (const auto& m : got) {
    ++seen[m.message_id.value_or("")];
  }
  result.received = got.size();
  result.unique = seen.size();
  other.delete_queue(queue);
  return result;
}

TEST_F(amqp_chaos, broker_restart_mid_publish_loses_nothing) {
  const auto r = publish_through_outage(options(), 6000, 5000, [] {
    const auto start = std::chrono::steady_clock::now();
    broker_->stop();
    std::this_thread::sleep_for(1s);
    broker_->start();
    std::printf("broker down and back in %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - start)
                                           .count()));
  });
  std::printf(
      "restart: queue_type=%s published=%d acked=%d not_acked=%d received=%zu unique=%zu "
      "duplicates=%zu reconnects=%llu resent=%llu\n",
      queue_type().c_str(), r.published, r.acked, r.not_acked, r.received, r.unique,
      r.received - r.unique, static_cast<unsigned long long>(r.client.reconnects),
      static_cast<unsigned long long>(r.publisher.resent));
  RecordProperty("duplicates", static_cast<int>(r.received - r.unique));
  EXPECT_EQ(r.acked, r.published);
  EXPECT_EQ(r.not_acked, 0);
  EXPECT_EQ(r.unique, static_cast<std::size_t>(r.published)) << "confirmed messages were lost";
  EXPECT_GE(r.client.reconnects, 1U);
}

TEST_F(amqp_chaos, forced_close_mid_publish_resends_unconfirmed) {
  const auto r = publish_through_outage(options(), 6000, 5000, [] {
    EXPECT_EQ(broker_->ctl("close_all_connections chaos-test"), 0);
  });
  std::printf(
      "forced close: published=%d acked=%d received=%zu unique=%zu duplicates=%zu "
      "reconnects=%llu resent=%llu\n",
      r.published, r.acked, r.received, r.unique, r.received - r.unique,
      static_cast<unsigned long long>(r.client.reconnects),
      static_cast<unsigned long long>(r.publisher.resent));
  RecordProperty("duplicates", static_cast<int>(r.received - r.unique));
  EXPECT_EQ(r.acked, r.published);
  EXPECT_EQ(r.unique, static_cast<std::size_t>(r.published));
  EXPECT_GE(r.client.reconnects, 1U);
  EXPECT_GT(r.publisher.resent, 0U) << "the close did not hit while messages were in flight";
}

TEST_F(amqp_chaos, blocked_connection_holds_publishes_until_unblocked) {
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto o = options();
    o.publisher.publish_timeout = 500ms;
    auto c = client::create(io.get_executor(), o);
    c->start();
    CO_ASSERT_TRUE(co_await c->wait_connected(in(20s)));
    EXPECT_EQ(broker_->ctl("set_vm_memory_high_watermark 0.000001"), 0);
    // RabbitMQ blocks a connection when it next publishes, and then says so.
    std::optional<publish_result> first;
    publish_callback on_first = [&](publish_result r) { first = std::move(r); };
    outgoing_message m;
    m.exchange = "amq.fanout";
    CO_ASSERT_OK(co_await c->get_publisher()->publish(m, on_first));
    for (int i = 0; i < 200 && c->state() != client_state::blocked; ++i) {
      co_await test::sleep_for(50ms);
    }
    EXPECT_EQ(c->state(), client_state::blocked);
    EXPECT_FALSE(c->ready());
    EXPECT_TRUE(c->current_connection()->is_blocked());
    EXPECT_EQ(c->current_connection()->blocked_reason(), "low on memory");
    // While blocked, publish() waits instead of piling frames up in our write buffer.
    const publish_callback never = [](publish_result) { ADD_FAILURE() << "was not sent"; };
    EXPECT_EQ(co_await c->get_publisher()->publish(m, never), errc::timeout);

    EXPECT_EQ(broker_->ctl("set_vm_memory_high_watermark 0.4"), 0);
    for (int i = 0; i < 200 && c->state() != client_state::connected; ++i) {
      co_await test::sleep_for(50ms);
    }
    EXPECT_EQ(c->state(), client_state::connected);
    CO_ASSERT_TRUE(co_await c->get_publisher()->wait_idle(in(10s)));
    CO_ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->outcome, publish_outcome::acked);
    const auto after = co_await c->get_publisher()->publish_and_wait(m);
    EXPECT_EQ(after.outcome, publish_outcome::acked);
    co_await c->stop();
  });
  broker_->ctl("set_vm_memory_high_watermark 0.4");
}

}  // namespace
}  // namespace sluice::amqp
