// The workers' own cost: requests published to a flavour queue, forwarded by a worker_service
// to a fast target and answered on a reply queue, against the same target called directly by
// the same HTTP client with the same number of requests outstanding. The worker (amqp client,
// worker_service, http client) runs on one loop thread as in the daemon; the target and the
// load generator on another. Prints a Markdown table.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/consumer.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/http/client.hpp"
#include "sluice/http/router.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/rpc/rpc_message.hpp"
#include "sluice/rpc/rpc_topology.hpp"
#include "sluice/worker/worker_service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "independent_client.hpp"
#include "sluice_test/loop_thread.hpp"
#include "test_support.hpp"

namespace sluice::worker {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using sluice::test::loop_thread;

constexpr int requests = 20'000;
constexpr int window = 64;  // outstanding at once (the service's concurrency too)

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct result {
  double seconds = 0;
  std::vector<double> latencies_ms;
  double p(double q) {
    std::sort(latencies_ms.begin(), latencies_ms.end());
    return latencies_ms[static_cast<std::size_t>(q * (latencies_ms.size() - 1))];
  }
};

TEST(worker_bench, proxy_path_against_direct_calls) {
  loop_thread worker_loop;
  loop_thread load_loop;

  metrics::registry target_metrics;
  http::router routes;
  const http::handler answer = [](http::request&) -> asio::awaitable<http::response> {
    co_return http::response::text(200, "text/plain", "hello, world\n");
  };
  routes.add("POST", "/{rest*}", "any", answer);
  http::server target(load_loop.io().get_executor(), http::server_options{}, routes,
                      target_metrics);
  const auto port = target.listen("127.0.0.1", 0);
  target.start();

  // Direct: the worker loop's http client calls the target, `window` at a time.
  http::client direct_client(worker_loop.io().get_executor(), http::client_options{});
  result direct = worker_loop.run([&]() -> asio::awaitable<result> {
    result r;
    int next = 0;
    int done = 0;
    async_event finished;
    const auto start = clock::now();
    std::function<asio::awaitable<void>()> one = [&]() -> asio::awaitable<void> {
      while (next < requests) {
        ++next;
        http::client_request req;
        req.method = "POST";
        req.host = "127.0.0.1";
        req.port = port;
        req.target = "/x";
        req.body = "hello";
        const auto t0 = clock::now();
        auto [ec, resp] = co_await direct_client.send(std::move(req), clock::now() + 10s);
        EXPECT_FALSE(ec);
        r.latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(clock::now() - t0).count());
        ++done;
      }
      finished.notify_all();
    };
    for (int i = 0; i < window; ++i)
      asio::co_spawn(co_await asio::this_coro::executor, one(), asio::detached);
    while (done < requests)
      co_await finished.wait_until(clock::now() + 1s);
    r.seconds = std::chrono::duration<double>(clock::now() - start).count();
    direct_client.close();
    co_return r;
  }());

  // Through the workers.
  services::service s;
  s.name = amqp::test::unique_name("wbench");
  s.concurrency = window;
  services::flavour f;
  f.name = "std";
  f.url = "http://127.0.0.1:" + std::to_string(port);
  s.flavours.push_back(f);
  s.default_flavour = "std";
  services::service_registry registry;
  metrics::registry worker_metrics_registry;
  amqp::client_options co;
  co.connection = amqp::test::options_for(amqp::test::broker_url());
  co.enable_publisher = false;
  auto client = amqp::client::create(worker_loop.io().get_executor(), co);
  http::client upstream(worker_loop.io().get_executor(), http::client_options{});
  auto workers = worker_service::create(worker_loop.io().get_executor(), client, registry, upstream,
                                        worker_metrics_registry, worker_options{});
  asio::post(worker_loop.io(), [&] {
    client->start();
    workers->start();
    registry.put(s);
  });

  result proxied = load_loop.run([&]() -> asio::awaitable<result> {
    result r;
    auto conn = amqp::connection::create(co_await asio::this_coro::executor,
                                         amqp::test::options_for(amqp::test::broker_url()));
    EXPECT_FALSE(co_await conn->open());
    auto [ec, ch] = co_await conn->open_channel();
    EXPECT_FALSE(co_await rpc::declare_service_topology(*ch, s));
    amqp::queue_options qo;
    qo.durable = false;
    qo.exclusive = true;
    qo.auto_delete = true;
    auto [qec, ok] = co_await ch->queue_declare("", qo);
    amqp::consume_options cons;
    cons.no_ack = true;
    auto [cec, replies] = co_await amqp::consumer::start(ch, ok.queue, cons);
    std::map<std::string, clock::time_point> sent;
    int next = 0;
    const auto publish = [&] {
      rpc::rpc_request req;
      req.id = "r" + std::to_string(next);
      req.service = s.name;
      req.flavour = "std";
      req.method = "POST";
      req.target = "/x";
      req.body = "hello";
      req.deadline_ms = unix_ms_now() + 30'000;
      rpc::reply_address to;
      to.reply_to = ok.queue;
      to.correlation_id = req.id;
      const auto m = rpc::encode_request(req, s.exchange(), to, unix_ms_now());
      sent[req.id] = clock::now();
      EXPECT_FALSE(ch->basic_publish(m.exchange, m.routing_key, m.properties, m.body));
      ++next;
    };
    const auto start = clock::now();
    for (int i = 0; i < window; ++i)
      publish();
    int done = 0;
    while (done < requests) {
      auto [rec, d] = co_await replies->receive(clock::now() + 10s);
      if (rec) {
        ADD_FAILURE() << "no reply: " << rec.message();
        break;
      }
      const auto id = d.properties.correlation_id.value_or("");
      r.latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(clock::now() - sent[id]).count());
      sent.erase(id);
      ++done;
      if (next < requests)
        publish();
    }
    r.seconds = std::chrono::duration<double>(clock::now() - start).count();
    co_await conn->close();
    co_return r;
  }());

  worker_loop.run([&]() -> asio::awaitable<void> {
    co_await workers->stop();
    upstream.close();
    co_await client->stop();
  }());
  load_loop.run([&]() -> asio::awaitable<void> { co_await target.shutdown(0ms); }());
  amqp::test::independent_client admin(amqp::test::broker_url());
  admin.delete_queue(s.queue("std"));
  admin.delete_exchange(s.exchange());

  std::printf("\n| path (%d requests, %d outstanding) | req/s | p50 ms | p99 ms |\n", requests,
              window);
  std::printf("| --- | --- | --- | --- |\n");
  std::printf("| direct (http::client -> target) | %.0f | %.2f | %.2f |\n",
              requests / direct.seconds, direct.p(0.5), direct.p(0.99));
  std::printf("| queue -> worker -> target -> reply queue | %.0f | %.2f | %.2f |\n",
              requests / proxied.seconds, proxied.p(0.5), proxied.p(0.99));
  std::printf("ratio proxied/direct: %.2f\n", direct.seconds / proxied.seconds);
}

}  // namespace
}  // namespace sluice::worker
