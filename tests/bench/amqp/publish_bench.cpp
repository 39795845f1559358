// Confirmed publishes per second: one connection, one confirm-mode channel, a window of
// RABBITMQ_CONFIRM_WINDOW (default 1000) unconfirmed, 256-byte persistent messages into a
// durable queue, once classic and once quorum. SLUICE_BENCH_MESSAGES sets the count (50000).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/publisher.hpp"

#include "test_support.hpp"

namespace sluice::amqp {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && std::atoll(v) > 0 ? static_cast<std::size_t>(std::atoll(v)) : fallback;
}

struct bench_result {
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  std::size_t acked = 0;
};

bench_result publish_bench(const std::string& queue_type, std::size_t messages,
                           std::size_t window) {
  const auto queue = test::unique_name("sluice.bench." + queue_type);
  bench_result result;
  test::run(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        connection_options co;
        co.server = test::broker_url();
        auto conn = connection::create(io.get_executor(), co);
        CO_ASSERT_OK(co_await conn->open());
        auto [cec, ch] = co_await conn->open_channel();
        CO_ASSERT_OK(cec);
        queue_options qo;
        qo.arguments.set("x-queue-type", queue_type);
        auto [qec, qok] = co_await ch->queue_declare(queue, qo);
        CO_ASSERT_OK(qec);
        CO_ASSERT_OK(co_await ch->confirm_select());

        std::vector<double> latencies_ms;
        latencies_ms.reserve(messages);
        publisher_options po;
        po.confirm_window = window;
        po.observer = [&](const publish_result& r) {
          latencies_ms.push_back(std::chrono::duration<double, std::milli>(r.latency).count());
          result.acked += r.outcome == publish_outcome::acked ? 1 : 0;
        };
        auto pub = publisher::create(po);
        pub->attach(ch);

        const std::string body(256, 'x');
        const publish_callback ignore = [](publish_result) {};
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < messages; ++i) {
          outgoing_message m;
          m.routing_key = queue;
          m.body = body;
          m.properties.delivery_mode = delivery_mode_persistent;
          m.properties.content_type = "application/json";
          CO_ASSERT_OK(co_await pub->publish(std::move(m), ignore));
        }
        CO_ASSERT_TRUE(co_await pub->wait_idle(std::chrono::steady_clock::now() + 300s));
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        result.per_second = static_cast<double>(messages) / took.count();
        std::sort(latencies_ms.begin(), latencies_ms.end());
        if (!latencies_ms.empty()) {
          result.p50_ms = latencies_ms[latencies_ms.size() / 2];
          result.p99_ms = latencies_ms[latencies_ms.size() * 99 / 100];
        }
        auto [dec, left] = co_await ch->queue_delete(queue);
        EXPECT_FALSE(dec);
        CO_ASSERT_OK(co_await conn->close());
      },
      600s);
  return result;
}

TEST(amqp_publish_bench, confirmed_publishes_per_second) {
  const auto messages = env_size("SLUICE_BENCH_MESSAGES", 50000);
  const auto window = env_size("RABBITMQ_CONFIRM_WINDOW", 1000);
  for (const std::string type : {"classic", "quorum"}) {
    const auto r = publish_bench(type, messages, window);
    std::printf(
        "amqp publish bench: queue=%s messages=%zu window=%zu body=256B persistent: "
        "%.0f confirmed/s, confirm latency p50=%.2f ms p99=%.2f ms\n",
        type.c_str(), messages, window, r.per_second, r.p50_ms, r.p99_ms);
    RecordProperty(type + "_per_second", static_cast<int>(r.per_second));
    EXPECT_EQ(r.acked, messages);
  }
}

}  // namespace
}  // namespace sluice::amqp
