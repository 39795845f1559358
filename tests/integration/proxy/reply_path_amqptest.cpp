// The two reply paths of the proxy measured side by side (print, not assert): a reply queue
// per instance against RabbitMQ's direct reply-to, with the proxy, the HTTP server and the
// amqp client in this process and the test worker answering at once. Also checks that both
// work and that the reply consumer comes back after the connection is lost.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <thread>
#include <vector>

#include "sluice/amqp/client.hpp"
#include "sluice/amqp/settings.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/proxy/proxy_service.hpp"
#include "sluice/services/service_registry.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "sluice_test/http_client.hpp"
#include "test_worker.hpp"

namespace sluice::proxy::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

std::string amqp_url() {
  const char* u = std::getenv("SLUICE_TEST_AMQP_URL");
  return u ? u : "";
}

services::service make_service(const std::string& name) {
  services::service s;
  s.name = name;
  s.flavours.push_back(services::flavour{"std", "http://127.0.0.1:9"});
  s.default_flavour = "std";
  s.timeout = 10s;
  return s;
}

// The ingress in-process: amqp client, proxy and HTTP server on one loop thread.
struct ingress {
  asio::io_context io;
  metrics::registry metrics;
  services::service_registry registry;
  http::router routes;
  std::shared_ptr<amqp::client> client;
  std::unique_ptr<proxy_service> proxy;
  std::unique_ptr<http::server> server;
  std::uint16_t port = 0;
  std::thread loop;

  ingress(reply_mode mode, const services::service& s, async_submitter* submitter = nullptr,
          std::string instance_id = {}) {
    amqp::settings as;
    as.url = amqp_url();
    auto options = amqp::make_client_options(as);
    EXPECT_TRUE(options);
    options->enable_publisher = false;
    client = amqp::client::create(io.get_executor(), *options);
    registry.put(s);
    proxy_options po;
    po.link.mode = mode;
    po.link.instance_id = std::move(instance_id);
    proxy = std::make_unique<proxy_service>(io.get_executor(), registry, client, metrics, po);
    proxy->set_async_submitter(submitter);
    add_proxy_routes(routes, *proxy);
    server =
        std::make_unique<http::server>(io.get_executor(), http::server_options{}, routes, metrics);
    port = server->listen("127.0.0.1", 0);
    server->start();
    client->start();
    proxy->start();
    loop = std::thread([this] { io.run(); });
  }
  ~ingress() {
    std::promise<void> done;
    asio::co_spawn(
        io,
        [this, &done]() -> asio::awaitable<void> {
          co_await server->shutdown(0ms);
          co_await proxy->stop();
          co_await client->stop();
          done.set_value();
        },
        asio::detached);
    done.get_future().wait_for(10s);
    io.stop();
    loop.join();
  }
  bool ready() {
    std::promise<bool> p;
    asio::post(io, [&] { p.set_value(proxy->link().ready()); });
    return p.get_future().get();
  }
  void drop_connection() {
    asio::post(io, [this] {
      if (auto c = client->current_connection())
        c->abort(std::make_error_code(std::errc::connection_reset));
    });
  }
};

bool wait_until(const std::function<bool()>& f, std::chrono::milliseconds timeout) {
  const auto until = clock::now() + timeout;
  while (clock::now() < until) {
    if (f())
      return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

std::vector<double> calls(std::uint16_t port, const std::string& target, int n) {
  sluice::test::http_connection conn(port);
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const auto t0 = clock::now();
    const auto r = conn.request("GET", target);
    ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    if (r.status != 200) {
      ADD_FAILURE() << r.status << " " << r.body;
      break;
    }
  }
  return ms;
}

void report(const char* mode, const char* what, std::vector<double> ms, double seconds) {
  std::sort(ms.begin(), ms.end());
  if (ms.empty())
    return;
  const auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * ms.size()))];
  };
  std::printf("[measure] %-15s %-16s n=%zu p50=%.3f ms p99=%.3f ms rate=%.0f/s\n", mode, what,
              ms.size(), at(0.5), at(0.99), ms.size() / seconds);
}

void measure(reply_mode mode, const char* name) {
  const auto s = make_service("pxr-" + std::to_string(::getpid()) + "-" + name);
  test_worker worker(amqp_url(), s, "std");
  worker.start();
  ingress in(mode, s);
  ASSERT_TRUE(wait_until([&] { return in.ready(); }, 20s));
  const std::string target = "/proxy/" + s.name + "/x";
  calls(in.port, target, 300);
  for (int round = 0; round < 2; ++round) {
    auto t0 = clock::now();
    const auto sequential = calls(in.port, target, 2000);
    report(name, "sequential", sequential,
           std::chrono::duration<double>(clock::now() - t0).count());
    std::vector<std::vector<double>> per(50);
    std::vector<std::thread> threads;
    t0 = clock::now();
    for (int c = 0; c < 50; ++c)
      threads.emplace_back([&, c] { per[c] = calls(in.port, target, 100); });
    for (auto& t : threads)
      t.join();
    const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
    std::vector<double> all;
    for (auto& v : per)
      all.insert(all.end(), v.begin(), v.end());
    report(name, "concurrency 50", all, seconds);
  }

  // After a lost connection the reply consumer comes back and requests are answered again.
  in.drop_connection();
  ASSERT_TRUE(wait_until([&] { return !in.ready(); }, 5s));
  ASSERT_TRUE(wait_until([&] { return in.ready(); }, 20s)) << "the reply link came back";
  EXPECT_TRUE(wait_until(
      [&] { return sluice::test::http_call(in.port, "GET", target).status == 200; }, 10s));
}

TEST(reply_path, reply_queue_per_instance) {
  measure(reply_mode::reply_queue, "reply_queue");
}

TEST(reply_path, direct_reply_to) {
  measure(reply_mode::direct_reply_to, "direct_reply_to");
}

// The reply queue's name still held by another connection (what a broker that has not yet
// noticed our previous, dead connection does): the link takes another name and answers.
TEST(reply_path, a_reply_queue_name_still_locked_is_replaced) {
  const auto s = make_service("pxl-" + std::to_string(::getpid()));
  test_worker worker(amqp_url(), s, "std");
  worker.start();
  const std::string id = "locked-" + std::to_string(::getpid());
  ingress first(reply_mode::reply_queue, s, nullptr, id);
  ASSERT_TRUE(wait_until([&] { return first.ready(); }, 20s));
  ingress second(reply_mode::reply_queue, s, nullptr, id);
  ASSERT_TRUE(wait_until([&] { return second.ready(); }, 20s));
  EXPECT_EQ(sluice::test::http_call(second.port, "GET", "/proxy/" + s.name).status, 200);
  EXPECT_EQ(sluice::test::http_call(first.port, "GET", "/proxy/" + s.name).status, 200);
}

// Stands in for the durable async path: publishes the request itself (what the real submitter
// does after storing it) and remembers what it was given.
class publishing_submitter : public async_submitter {
 public:
  std::shared_ptr<amqp::client> client;
  services::service service;
  std::atomic<int> submitted{0};
  std::string last_key;
  bool last_had_reply = false;
  bool last_async = false;

  asio::awaitable<async_submit_result> submit(rpc::rpc_request request, rpc::reply_address reply,
                                              std::optional<std::string> key) override {
    ++submitted;
    last_key = key.value_or("");
    last_had_reply = !reply.reply_to.empty();
    last_async = request.async && request.deadline_ms == 0;
    async_submit_result result;
    result.id = request.id;
    auto [ec, ch] = co_await client->open_channel();
    if (ec) {
      result.error = http::error_response(503, "test", ec.message());
      co_return result;
    }
    const auto m = rpc::encode_request(request, service.exchange(), reply, 0);
    ch->basic_publish(m.exchange, m.routing_key, m.properties, m.body);
    co_await ch->close();
    co_return result;
  }
};

TEST(async_requests, respond_async_answers_202_or_the_reply_when_it_comes_within_wait) {
  const auto s = make_service("pxa-" + std::to_string(::getpid()));
  test_worker worker(amqp_url(), s, "std", test_worker::mode::hold);
  worker.start();
  publishing_submitter submitter;
  submitter.service = s;
  ingress in(reply_mode::reply_queue, s, &submitter);
  submitter.client = in.client;
  ASSERT_TRUE(wait_until([&] { return in.ready(); }, 20s));
  const std::string target = "/proxy/" + s.name + "/job";

  // No wait: 202 at once, with Location and the pending body.
  auto r = sluice::test::http_call(
      in.port, "POST", target, "work",
      {{"Prefer", "respond-async"}, {"X-Request-Id", "job-1"}, {"Idempotency-Key", "k-1"}});
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.header("location"), "/api/v1/requests/job-1");
  EXPECT_EQ(r.json()["id"], "job-1");
  EXPECT_EQ(r.json()["status"], "pending");
  EXPECT_EQ(submitter.last_key, "k-1");
  EXPECT_FALSE(submitter.last_had_reply);
  EXPECT_TRUE(submitter.last_async);

  // wait=1 and no reply: the 202 after about a second.
  auto t0 = clock::now();
  r = sluice::test::http_call(in.port, "POST", target, "work",
                              {{"Prefer", "respond-async, wait=1"}, {"X-Request-Id", "job-2"}});
  EXPECT_EQ(r.status, 202);
  EXPECT_GE(clock::now() - t0, 1s);
  EXPECT_TRUE(submitter.last_had_reply);
  ASSERT_TRUE(worker.wait_received(2, 5s));

  // wait=5 and a reply within it: the reply itself.
  std::thread release([&] {
    if (worker.wait_received(3, 5s))
      worker.release_held();
  });
  t0 = clock::now();
  r = sluice::test::http_call(in.port, "POST", target, "work",
                              {{"Prefer", "respond-async, wait=5"}, {"X-Request-Id", "job-3"}});
  release.join();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "work");
  EXPECT_LT(clock::now() - t0, 5s);
}

}  // namespace
}  // namespace sluice::proxy::test
