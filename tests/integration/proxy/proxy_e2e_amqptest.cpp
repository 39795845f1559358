// The request proxy end to end with every real part: the sluice binary as ingress and workers,
// the shared RabbitMQ, a fresh PostgreSQL database per test, and target servers started here
// (sluice's own HTTP server on a loop thread of the test). Services are created through the API,
// so the catalog, the follower, the ingress, the workers, the async path and the HTTP client all
// take part.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <set>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "sluice/core/async_event.hpp"
#include "sluice/http/router.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "independent_client.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/loop_thread.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"
#include "test_support.hpp"

namespace sluice::proxy::e2e {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using json = nlohmann::json;
using sluice::test::http_call;
using sluice::test::http_connection;
using sluice::test::http_result;
using sluice::test::loop_thread;
using sluice::test::raw_connection;
using sluice::test::sluice_process;
using clock = std::chrono::steady_clock;

// For conditions outside this process (an HTTP answer, a metric): checked every 10 ms.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto until = clock::now() + limit;
  while (clock::now() < until) {
    if (condition())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

std::string unique(const std::string& prefix) {
  static std::atomic<int> n{0};
  return prefix + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(clock::now().time_since_epoch().count() % 1000000) + "-" +
         std::to_string(n++);
}

std::string rfc3339_in(std::chrono::seconds ahead) {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + ahead);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The value of one series of /metrics, `fallback` when absent.
double metric(std::uint16_t port, const std::string& series, double fallback = 0) {
  const auto text = http_call(port, "GET", "/metrics").body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return fallback;
  return std::stod(text.substr(at + series.size() + 2));
}

// A target service: records what it got, waits `X-Delay-Ms` (a request header) when sent, holds
// the first `hold_first` calls until release(), and answers with `respond` (by default 200 with
// its label as the body).
class target_server {
 public:
  using responder = std::function<http::response(const http::request&)>;

  target_server(loop_thread& loop, std::string label, responder respond = {})
      : loop_(loop), label_(std::move(label)), respond_(std::move(respond)) {
    const http::handler h = [this](http::request& req) -> asio::awaitable<http::response> {
      // Counted until the coroutine ends, so the destructor can wait for the last one: a handler
      // still sleeping when the test ends would otherwise resume into a destroyed target.
      const running_guard running(*this);
      std::size_t index = 0;
      {
        std::lock_guard lock(mutex_);
        index = seen_.size();
        seen_.push_back(req);
      }
      if (const auto d = req.header("X-Delay-Ms")) {
        asio::steady_timer t(co_await asio::this_coro::executor,
                             std::chrono::milliseconds(std::stoi(std::string(*d))));
        co_await t.async_wait(asio::use_awaitable);
      }
      while (index < hold_first_ && !released_)
        co_await release_event_.wait_until(clock::time_point::max());
      if (respond_)
        co_return respond_(req);
      co_return http::response::text(200, "text/plain", label_);
    };
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"})
      routes_.add(m, "/{rest*}", "any", h);
    http::server_options o;
    o.name = "target-" + label_;
    o.max_body_bytes = 16 * 1024 * 1024;
    server_ = std::make_unique<http::server>(loop_.io().get_executor(), o, routes_, metrics_);
    port_ = server_->listen("127.0.0.1", 0);
    server_->start();
  }

  ~target_server() {
    release();
    loop_.run([](target_server& t) -> asio::awaitable<void> {
      while (t.running_ > 0)
        co_await t.idle_event_.wait_until(clock::time_point::max());
      co_await t.server_->shutdown(std::chrono::milliseconds(0));
    }(*this));
  }

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  void hold_first(std::size_t n) { hold_first_ = n; }
  void release() {
    asio::post(loop_.io(), [this] {
      released_ = true;
      release_event_.notify_all();
    });
  }
  std::vector<http::request> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  std::size_t calls() const {
    std::lock_guard lock(mutex_);
    return seen_.size();
  }
  // How many requests carried `value` in header `name`.
  std::size_t count_with(std::string_view name, std::string_view value) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count_if(seen_.begin(), seen_.end(), [&](const auto& r) {
      const auto v = r.header(name);
      return v && *v == value;
    }));
  }
  // Every X-Request-Id this target got.
  std::set<std::string> request_ids() const {
    std::lock_guard lock(mutex_);
    std::set<std::string> ids;
    for (const auto& r : seen_) {
      if (const auto v = r.header("X-Request-Id"))
        ids.emplace(*v);
    }
    return ids;
  }

 private:
  loop_thread& loop_;
  std::string label_;
  responder respond_;
  metrics::registry metrics_;
  http::router routes_;
  std::unique_ptr<http::server> server_;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::vector<http::request> seen_;
  std::atomic<std::size_t> hold_first_{0};
  bool released_ = false;  // loop thread only
  async_event release_event_;
  int running_ = 0;  // handlers not finished yet; loop thread only
  async_event idle_event_;

  struct running_guard {
    explicit running_guard(target_server& t) : target(t) { ++target.running_; }
    ~running_guard() {
      if (--target.running_ == 0)
        target.idle_event_.notify_all();
    }
    running_guard(const running_guard&) = delete;
    running_guard& operator=(const running_guard&) = delete;
    target_server& target;
  };
};

struct raw_response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  static std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  }
  std::vector<std::string> all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : headers) {
      if (lower(n) == name)
        out.push_back(v);
    }
    return out;
  }
  std::string header(std::string_view name) const {
    const auto a = all(name);
    return a.empty() ? std::string() : a.front();
  }
};

raw_response parse_response(const std::string& wire) {
  raw_response r;
  const auto end = wire.find("\r\n\r\n");
  if (end == std::string::npos || wire.size() < 12)
    return r;
  r.status = std::stoi(wire.substr(9, 3));
  std::size_t pos = wire.find("\r\n") + 2;
  while (pos < end) {
    const auto eol = wire.find("\r\n", pos);
    const auto line = wire.substr(pos, eol - pos);
    const auto colon = line.find(':');
    r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 2));
    pos = eol + 2;
  }
  r.body = wire.substr(end + 4);
  return r;
}

raw_response raw_call(std::uint16_t port, const std::string& head, const std::string& body = {}) {
  raw_connection conn(port);
  conn.send(head + "Content-Length: " + std::to_string(body.size()) +
            "\r\nConnection: close\r\n\r\n" + body);
  return parse_response(conn.receive(30s));
}

class proxy_e2e : public ::testing::Test {
 protected:
  loop_thread loop_;
  sluice::test::scoped_database db_;
  sluice::test::temp_dir buffer_;
  std::vector<std::pair<std::string, std::vector<std::string>>> created_;  // for the cleanup

  ~proxy_e2e() override {
    try {
      amqp::test::independent_client admin(amqp::test::broker_url());
      for (const auto& [name, flavours] : created_) {
        for (const auto& f : flavours)
          admin.delete_queue("default." + name + "." + f);
        admin.delete_exchange("default." + name);
      }
    } catch (const std::exception&) {
    }
  }

  sluice_process::env_map env(sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("RABBITMQ_URL", sluice::test::require_env("SLUICE_TEST_AMQP_URL"));
    extra.try_emplace("FILE_BUFFER_DIR", buffer_.path());
    extra.try_emplace("SLUICE_ROLES", "ingress,workers");
    extra.try_emplace("LOG_LEVEL", "info");
    return extra;
  }

  // A PUT through the API as a client honouring Retry-After does it: a 503 (PostgreSQL not
  // reachable or, right after the start, not migrated yet) is retried until 20 s have passed.
  static http_result write_api(const sluice_process& s, const std::string& path, const json& body) {
    http_result r;
    eventually(
        [&] {
          r = http_call(s.port(), "PUT", path, body.dump(), {{"Content-Type", "application/json"}});
          return r.status != 503;
        },
        20s);
    return r;
  }

  // PUT /api/v1/services/{name} with `definition`, remembered for the cleanup.
  void put_service(const sluice_process& s, const std::string& name, const json& definition) {
    std::vector<std::string> flavours;
    for (const auto& f : definition["flavours"])
      flavours.push_back(f["name"]);
    created_.emplace_back(name, flavours);
    const auto r = write_api(s, "/api/v1/services/" + name, definition);
    ASSERT_TRUE(r.status == 201 || r.status == 200) << r.status << " " << r.body;
  }

  void put_schedule(const sluice_process& s, const std::string& name, const json& schedule) {
    const auto r = write_api(s, "/api/v1/services/" + name + "/schedule", schedule);
    ASSERT_EQ(r.status, 200) << r.body;
  }

  // The workers of `s` consume every flavour queue of `name`, and its ingress takes replies.
  static void wait_workers(const sluice_process& s, const std::string& name,
                           const std::vector<std::string>& flavours) {
    for (const auto& f : flavours) {
      ASSERT_TRUE(s.wait_for_log("worker: consuming queue=default." + name + "." + f + " ", 20s))
          << s.log();
    }
  }
  static void wait_ingress(const sluice_process& s) {
    ASSERT_TRUE(s.wait_for_log("proxy: consuming replies", 20s)) << s.log();
  }
};

json flavour(const std::string& name, const std::string& url) {
  return json{{"name", name}, {"url", url}};
}

// 1. Weighted split, stickiness by X-Request-Id, fallback to the default once expired.
TEST_F(proxy_e2e, weighted_split_sticky_ids_and_expiry_fallback) {
  target_server green(loop_, "green");
  target_server std_(loop_, "std");
  sluice_process s(env());
  const auto name = unique("e2e-split");
  put_service(s, name,
              {{"defaultFlavour", "std"},
               {"concurrency", 64},
               {"flavours", {flavour("std", std_.url()), flavour("green", green.url())}}});
  wait_workers(s, name, {"std", "green"});
  wait_ingress(s);
  put_schedule(
      s, name,
      {{"flavours", {{{"name", "green"}, {"weight", 70}}, {{"name", "std"}, {"weight", 30}}}},
       {"validUntil", rfc3339_in(600s)}});

  constexpr int threads = 8;
  constexpr int per_thread = 250;
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  const auto t0 = clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      http_connection conn(s.port());
      for (int i = 0; i < per_thread; ++i) {
        const auto r = conn.request(
            "GET", "/proxy/" + name + "/w", "",
            {{"X-Request-Id", "split-" + std::to_string(t) + "-" + std::to_string(i)}});
        if (r.status != 200)
          ++failures;
      }
    });
  }
  for (auto& th : pool)
    th.join();
  const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
  EXPECT_EQ(failures, 0);
  const auto total = green.calls() + std_.calls();
  ASSERT_EQ(total, static_cast<std::size_t>(threads * per_thread));
  const double green_share = 100.0 * green.calls() / total;
  std::printf("[measure] split over %zu requests in %.2f s: green %.2f %%, std %.2f %%\n", total,
              seconds, green_share, 100.0 - green_share);
  EXPECT_NEAR(green_share, 70.0, 4.0);
  EXPECT_NEAR(100.0 - green_share, 30.0, 4.0);

  // The same ids again land on the same flavour.
  const auto green_ids = green.request_ids();
  const auto std_ids = std_.request_ids();
  http_connection conn(s.port());
  for (int i = 0; i < 100; ++i) {
    const std::string id = "split-" + std::to_string(i % threads) + "-" + std::to_string(i);
    const auto r = conn.request("GET", "/proxy/" + name + "/again", "", {{"X-Request-Id", id}});
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string expected = green_ids.count(id) ? "green" : "std";
    ASSERT_TRUE(green_ids.count(id) + std_ids.count(id) == 1) << id;
    EXPECT_EQ(r.body, expected) << id;
  }

  // Expiry: valid for two more seconds, then every request goes to the default flavour.
  put_schedule(
      s, name,
      {{"flavours", {{{"name", "green"}, {"weight", 100}}}}, {"validUntil", rfc3339_in(2s)}});
  const std::string gauge = "sluice_schedule_valid_seconds{service=\"" + name + "\"}";
  ASSERT_TRUE(eventually([&] { return metric(s.port(), gauge, 1e9) < 0; }, 10s))
      << http_call(s.port(), "GET", "/metrics").body;
  const auto green_before = green.calls();
  for (int i = 0; i < 100; ++i) {
    const auto r = conn.request("GET", "/proxy/" + name + "/late", "",
                                {{"X-Request-Id", "late-" + std::to_string(i)}});
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "std") << "expired schedule: the default flavour";
  }
  EXPECT_EQ(green.calls(), green_before);
}

// 2. A schedule change made through instance A is followed by instance B within 1 s.
TEST_F(proxy_e2e, a_schedule_change_on_one_instance_is_followed_by_another_within_a_second) {
  target_server green(loop_, "green");
  target_server std_(loop_, "std");
  sluice::test::temp_dir other_buffer;
  sluice_process a(env());
  sluice_process b(env({{"FILE_BUFFER_DIR", other_buffer.path()}}));
  const auto name = unique("e2e-follow");
  put_service(a, name,
              {{"defaultFlavour", "std"},
               {"flavours", {flavour("std", std_.url()), flavour("green", green.url())}}});
  wait_workers(b, name, {"std", "green"});
  wait_ingress(b);
  http_connection conn(b.port());
  int n = 0;
  const auto batch_goes_to = [&](const std::string& label) {
    bool all = true;
    for (int i = 0; i < 10; ++i) {
      const auto r = conn.request("GET", "/proxy/" + name + "/f", "",
                                  {{"X-Request-Id", "follow-" + std::to_string(n++)}});
      all = all && r.status == 200 && r.body == label;
    }
    return all;
  };
  ASSERT_TRUE(batch_goes_to("std"));
  const auto t0 = clock::now();
  put_schedule(
      a, name,
      {{"flavours", {{{"name", "green"}, {"weight", 100}}}}, {"validUntil", rfc3339_in(600s)}});
  const bool followed = eventually([&] { return batch_goes_to("green"); }, 5s);
  const auto took = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  std::printf("[measure] instance B routes by A's new schedule after %.1f ms\n", took);
  EXPECT_TRUE(followed);
  EXPECT_LT(took, 1000.0);
}

// 3. A request that expires while the only worker slot is busy: 504, and the target never sees
// it.
TEST_F(proxy_e2e, an_expired_request_is_504_and_never_reaches_the_target) {
  target_server target(loop_, "std");
  target.hold_first(1);
  sluice_process s(env());
  const auto name = unique("e2e-expire");
  put_service(s, name,
              {{"defaultFlavour", "std"},
               {"concurrency", 1},
               {"flavours", {flavour("std", target.url())}}});
  wait_workers(s, name, {"std"});
  wait_ingress(s);

  std::promise<http_result> first;
  // Released and joined on every way out, a failed ASSERT included.
  struct joiner {
    target_server& t;
    std::thread th;
    ~joiner() {
      t.release();
      if (th.joinable())
        th.join();
    }
  } holder{target, {}};
  holder.th = std::thread([&] {
    first.set_value(http_call(s.port(), "POST", "/proxy/" + name + "/one", "first-body",
                              {{"X-Request-Id", "first-id"}, {"X-Sluice-Timeout-Ms", "20000"}}));
  });
  ASSERT_TRUE(eventually([&] { return target.calls() == 1; }, 10s));
  const auto second = http_call(s.port(), "POST", "/proxy/" + name + "/two", "second-body",
                                {{"X-Request-Id", "second-id"}, {"X-Sluice-Timeout-Ms", "300"}});
  EXPECT_EQ(second.status, 504) << second.body;
  EXPECT_NE(second.body.find("upstream_timeout"), std::string::npos) << second.body;
  target.release();
  holder.th.join();
  EXPECT_EQ(first.get_future().get().status, 200);
  // A third request after it: with concurrency 1 the queue is FIFO, so once the third is
  // answered the second was dealt with (expired in the queue or acked as expired by the worker).
  const auto third = http_call(s.port(), "POST", "/proxy/" + name + "/three", "third-body",
                               {{"X-Request-Id", "third-id"}, {"X-Sluice-Timeout-Ms", "10000"}});
  EXPECT_EQ(third.status, 200) << third.body;
  const auto ids = target.request_ids();
  EXPECT_EQ(ids, (std::set<std::string>{"first-id", "third-id"}));
  for (const auto& r : target.seen())
    EXPECT_NE(r.body, "second-body");
  const double expired = metric(s.port(), "sluice_worker_messages_total{service=\"" + name +
                                              "\",flavour=\"std\",outcome=\"expired\"}");
  amqp::test::independent_client admin(amqp::test::broker_url());
  const auto left = admin.message_count("default." + name + ".std");
  std::printf(
      "[measure] the expired request: worker outcome=expired %.0f, left in queue %u "
      "(0 + 0 means RabbitMQ's expiration dropped it)\n",
      expired, left);
  EXPECT_EQ(left, 0u);
  EXPECT_LE(expired, 1);
}

// 4. Target down: 502 upstream_unavailable; target slower than the service timeout: 504.
TEST_F(proxy_e2e, target_down_is_502_and_a_slow_target_is_504) {
  target_server slow(loop_, "slow");
  sluice_process s(env());
  const auto name = unique("e2e-fail");
  put_service(s, name,
              {{"defaultFlavour", "down"},
               {"timeoutMs", 500},
               {"flavours",
                {flavour("down", "http://127.0.0.1:" + std::to_string(closed_port())),
                 flavour("slow", slow.url())}}});
  wait_workers(s, name, {"down", "slow"});
  wait_ingress(s);
  auto r = http_call(s.port(), "GET", "/proxy/" + name + "/x");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(r.body.find("upstream_unavailable"), std::string::npos) << r.body;
  const auto t0 = clock::now();
  r = http_call(s.port(), "GET", "/proxy/" + name + "/x", "",
                {{"X-Sluice-Flavour", "slow"}, {"X-Delay-Ms", "1500"}});
  const auto took = clock::now() - t0;
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(r.body.find("upstream_timeout"), std::string::npos) << r.body;
  EXPECT_LT(took, 1400ms) << "answered at the service's 500 ms timeout, not by the target";
  EXPECT_EQ(slow.calls(), 1u);
}

// 5. Ingress on one instance, workers on another.
TEST_F(proxy_e2e, ingress_and_workers_on_separate_instances) {
  target_server target(loop_, "std");
  sluice::test::temp_dir other_buffer;
  sluice_process a(env({{"SLUICE_ROLES", "ingress"}}));
  const auto b_env = env({{"SLUICE_ROLES", "workers"}, {"FILE_BUFFER_DIR", other_buffer.path()}});
  auto b = std::make_unique<sluice_process>(b_env);
  const auto name = unique("e2e-split-roles");
  put_service(a, name, {{"defaultFlavour", "std"}, {"flavours", {flavour("std", target.url())}}});
  wait_workers(*b, name, {"std"});
  wait_ingress(a);
  EXPECT_EQ(a.log().find("worker: consuming"), std::string::npos) << "A runs no workers";
  auto r = http_call(a.port(), "GET", "/proxy/" + name + "/r1", "", {{"X-Request-Id", "r1"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "std");
  EXPECT_EQ(target.count_with("X-Request-Id", "r1"), 1u);

  EXPECT_EQ(b->stop(SIGTERM), 0) << b->log();
  b.reset();
  r = http_call(a.port(), "GET", "/proxy/" + name + "/r2", "",
                {{"X-Request-Id", "r2"}, {"X-Sluice-Timeout-Ms", "500"}});
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(target.count_with("X-Request-Id", "r2"), 0u);

  b = std::make_unique<sluice_process>(b_env);
  wait_workers(*b, name, {"std"});
  ASSERT_TRUE(eventually(
      [&] {
        return http_call(a.port(), "GET", "/proxy/" + name + "/r3", "",
                         {{"X-Request-Id", "r3"}, {"X-Sluice-Timeout-Ms", "2000"}})
                   .status == 200;
      },
      15s));
  EXPECT_GE(target.count_with("X-Request-Id", "r3"), 1u);
  EXPECT_EQ(target.count_with("X-Request-Id", "r2"), 0u) << "the expired r2 was never forwarded";
}

// 6. Async: 202 and poll, wait=N, idempotency.
TEST_F(proxy_e2e, async_requests_poll_wait_and_idempotency) {
  target_server target(loop_, "std", [](const http::request& req) {
    auto r = http::response::text(201, "text/plain", "async:" + req.body);
    r.headers.emplace_back("X-Answer", "yes");
    return r;
  });
  sluice_process s(env());
  const auto name = unique("e2e-async");
  put_service(s, name,
              {{"defaultFlavour", "std"},
               {"timeoutMs", 20000},
               {"flavours", {flavour("std", target.url())}}});
  wait_workers(s, name, {"std"});
  wait_ingress(s);

  const auto poll = [&](const std::string& location) {
    return http_call(s.port(), "GET", location);
  };
  const auto wait_done = [&](const std::string& location) {
    json out;
    const bool done = eventually(
        [&] {
          const auto r = poll(location);
          if (r.status != 200)
            return false;
          out = r.json();
          return out["status"] != "pending";
        },
        20s);
    EXPECT_TRUE(done) << out.dump();
    return out;
  };

  // 202 + Location, pending while the target takes a second, then done with its answer.
  auto r = http_call(s.port(), "POST", "/proxy/" + name + "/a", "one",
                     {{"Prefer", "respond-async"}, {"X-Delay-Ms", "1000"}});
  ASSERT_EQ(r.status, 202) << r.body;
  const auto id = r.json()["id"].get<std::string>();
  const auto location = r.header("location");
  EXPECT_EQ(location, "/api/v1/requests/" + id);
  EXPECT_EQ(r.json()["status"], "pending");
  const auto early = poll(location);
  EXPECT_EQ(early.status, 200) << early.body;
  if (early.status == 200) {
    EXPECT_EQ(early.json()["status"], "pending");
  }
  auto done = wait_done(location);
  EXPECT_EQ(done["status"], "done") << done.dump();
  EXPECT_EQ(done["response"]["status"], 201);
  EXPECT_EQ(done["response"]["body"], "async:one");
  EXPECT_EQ(done["response"]["headers"]["x-answer"], "yes") << done.dump();

  // wait=5 and a fast target: the answer itself.
  r = http_call(s.port(), "POST", "/proxy/" + name + "/b", "two",
                {{"Prefer", "respond-async, wait=5"}});
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body, "async:two");
  EXPECT_EQ(r.header("x-answer"), "yes");

  // wait=1 and a target that takes 3 s: 202 at about 1 s, the result later.
  const auto t0 = clock::now();
  r = http_call(s.port(), "POST", "/proxy/" + name + "/c", "three",
                {{"Prefer", "respond-async, wait=1"}, {"X-Delay-Ms", "3000"}});
  const auto took = clock::now() - t0;
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 2500ms);
  done = wait_done(r.header("location"));
  EXPECT_EQ(done["status"], "done");
  EXPECT_EQ(done["response"]["body"], "async:three");

  // The same Idempotency-Key twice: one id, one call of the target.
  const auto first = http_call(s.port(), "POST", "/proxy/" + name + "/d", "four",
                               {{"Prefer", "respond-async"}, {"Idempotency-Key", "key-4"}});
  const auto again = http_call(s.port(), "POST", "/proxy/" + name + "/d", "four",
                               {{"Prefer", "respond-async"}, {"Idempotency-Key", "key-4"}});
  ASSERT_EQ(first.status, 202) << first.body;
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(first.json()["id"], again.json()["id"]);
  done = wait_done(first.header("location"));
  EXPECT_EQ(done["response"]["body"], "async:four");
  // A later request done too: had the repeat been forwarded, it would be by now.
  const auto later = http_call(s.port(), "POST", "/proxy/" + name + "/e", "five",
                               {{"Prefer", "respond-async"}, {"Idempotency-Key", "key-5"}});
  ASSERT_EQ(later.status, 202);
  wait_done(later.header("location"));
  EXPECT_EQ(target.count_with("Idempotency-Key", "key-4"), 1u);
}

// 7. An async request while PostgreSQL is unreachable is buffered and answered later. The file
// buffer is replayed into PostgreSQL within milliseconds of the restore, but the replayed row is
// published by the relay's sweeper only once older than RELAY_SWEEP_GRACE_MS (30 s by default),
// so this test takes about 31 s; the default is kept on purpose, it is what a deployment gets.
TEST_F(proxy_e2e, an_async_request_while_postgres_is_down_is_answered_later) {
  target_server target(loop_, "std", [](const http::request& req) {
    return http::response::text(200, "text/plain", "late:" + req.body);
  });
  sluice::test::tcp_proxy pg("127.0.0.1", sluice::test::url_port(db_.url()));
  sluice_process s(env({{"DATABASE_URL", sluice::test::url_with_port(db_.url(), pg.port())}}));
  const auto name = unique("e2e-pgdown");
  put_service(s, name, {{"defaultFlavour", "std"}, {"flavours", {flavour("std", target.url())}}});
  wait_workers(s, name, {"std"});
  wait_ingress(s);

  pg.cut();
  const auto cut_at = clock::now();
  const auto r = http_call(s.port(), "POST", "/proxy/" + name + "/p", "buffered",
                           {{"Prefer", "respond-async"}, {"X-Request-Id", "pg-down-1"}});
  ASSERT_EQ(r.status, 202) << r.body << s.log();
  const auto location = r.header("location");
  const auto accepted_ms = std::chrono::duration<double, std::milli>(clock::now() - cut_at).count();
  EXPECT_EQ(target.calls(), 0u);
  // Meanwhile there is no honest answer about it: the file buffer is not indexed by id.
  const auto during = http_call(s.port(), "GET", location);
  EXPECT_EQ(during.status, 503) << during.body;
  EXPECT_NE(during.body.find("db_unavailable"), std::string::npos) << during.body;
  pg.restore();
  const auto restored_at = clock::now();
  json out;
  const bool done = eventually(
      [&] {
        const auto g = http_call(s.port(), "GET", location);
        if (g.status != 200)
          return false;
        out = g.json();
        return out["status"] == "done";
      },
      60s);
  EXPECT_TRUE(done) << out.dump() << s.log();
  std::printf("[measure] PostgreSQL cut: 202 after %.1f ms; restored: done after %.1f ms\n",
              accepted_ms,
              std::chrono::duration<double, std::milli>(clock::now() - restored_at).count());
  EXPECT_EQ(out["response"]["body"], "late:buffered");
  EXPECT_EQ(target.calls(), 1u);
}

// 8. Batch mode: five callers, one batch call, each its own answer; a malformed answer is 502 for
// all.
TEST_F(proxy_e2e, batch_mode_round_trip_and_a_malformed_batch_answer) {
  std::atomic<int> batch_calls{0};
  std::atomic<int> batch_entries{0};
  target_server batcher(loop_, "batch", [&](const http::request& req) {
    ++batch_calls;
    const auto in = json::parse(req.body);
    json out = json::array();
    for (const auto& e : in) {
      ++batch_entries;
      out.push_back({{"correlation_id", e["correlation_id"]},
                     {"status", 200},
                     {"headers", {{"X-Batched", "yes"}}},
                     {"body", "batched:" + e["body"].get<std::string>()}});
    }
    return http::response::json(200, out.dump());
  });
  target_server broken(loop_, "broken", [](const http::request&) {
    return http::response::json(200, "[{\"correlation_id\": not json");
  });
  target_server single(loop_, "single");
  sluice_process s(env());
  const auto good = unique("e2e-batch");
  const auto bad = unique("e2e-badbatch");
  put_service(s, good,
              {{"defaultFlavour", "std"},
               {"concurrency", 8},
               {"batch", {{"maxRequests", 5}, {"maxWaitMs", 50}, {"url", batcher.url("/batch")}}},
               {"flavours", {flavour("std", single.url())}}});
  put_service(s, bad,
              {{"defaultFlavour", "std"},
               {"concurrency", 8},
               {"batch", {{"maxRequests", 5}, {"maxWaitMs", 50}, {"url", broken.url("/batch")}}},
               {"flavours", {flavour("std", single.url())}}});
  wait_workers(s, good, {"std"});
  wait_workers(s, bad, {"std"});
  wait_ingress(s);

  const auto five = [&](const std::string& service) {
    std::vector<http_result> results(5);
    std::vector<std::thread> callers;
    for (int i = 0; i < 5; ++i) {
      callers.emplace_back([&, i] {
        results[i] = http_call(s.port(), "POST", "/proxy/" + service + "/score",
                               "req-" + std::to_string(i), {{"Content-Type", "text/plain"}});
      });
    }
    for (auto& c : callers)
      c.join();
    return results;
  };
  const auto answers = five(good);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(answers[i].status, 200) << answers[i].body;
    EXPECT_EQ(answers[i].body, "batched:req-" + std::to_string(i));
    EXPECT_EQ(answers[i].header("x-batched"), "yes");
  }
  EXPECT_EQ(batch_entries, 5);
  EXPECT_LE(batch_calls, 5);
  std::printf("[measure] 5 concurrent requests went out in %d batch call(s)\n", batch_calls.load());
  EXPECT_EQ(single.calls(), 0u) << "batch mode posts to the batch URL only";

  const auto failed = five(bad);
  for (const auto& f : failed) {
    EXPECT_EQ(f.status, 502) << f.body;
    EXPECT_NE(f.body.find("upstream_bad_batch"), std::string::npos) << f.body;
  }
}

// 9. Byte-exact round trip through ingress, RabbitMQ, worker, HTTP client and target.
TEST_F(proxy_e2e, byte_exact_round_trip_through_the_whole_chain) {
  std::string binary;
  for (int i = 0; i < 256; ++i)
    binary.push_back(static_cast<char>(i));
  target_server target(loop_, "echo", [](const http::request& req) {
    http::response r;
    r.status = 203;
    r.content_type = "application/x-echo";
    r.headers.emplace_back("X-Echo-Method", req.method);
    r.headers.emplace_back("Set-Cookie", "a=1");
    r.headers.emplace_back("Set-Cookie", "b=2");
    r.headers.emplace_back("X-Bin", "v\tw");
    r.body = req.body;
    return r;
  });
  sluice_process s(env());
  const auto name = unique("e2e-bytes");
  put_service(s, name,
              {{"defaultFlavour", "std"}, {"flavours", {flavour("std", target.url("/base"))}}});
  wait_workers(s, name, {"std"});
  wait_ingress(s);

  const std::string head = "POST /proxy/" + name +
                           "/a%2Fb//c%20d?x=%2F&y=1&y=2&&z HTTP/1.1\r\n"
                           "Host: gateway.example\r\n"
                           "X-Dup: one\r\n"
                           "Accept: */*\r\n"
                           "x-dup: two\r\n"
                           "Content-Type: application/octet-stream\r\n"
                           "X-Request-Id: bytes-1\r\n";
  const auto r = raw_call(s.port(), head, binary);
  ASSERT_EQ(r.status, 203) << r.body;
  EXPECT_TRUE(r.body == binary) << "binary body back byte-exact (" << r.body.size() << " bytes)";
  EXPECT_EQ(r.header("content-type"), "application/x-echo");
  EXPECT_EQ(r.header("x-echo-method"), "POST");
  EXPECT_EQ(r.all("set-cookie"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_EQ(r.header("x-bin"), "v\tw");

  ASSERT_EQ(target.calls(), 1u);
  const auto got = target.seen().front();
  EXPECT_EQ(got.method, "POST");
  EXPECT_EQ(got.target, "/base/a%2Fb//c%20d?x=%2F&y=1&y=2&&z");
  EXPECT_TRUE(got.body == binary) << "binary body at the target byte-exact";
  std::vector<std::string> dups;
  for (const auto& [n, v] : got.headers) {
    if (raw_response::lower(n) == "x-dup")
      dups.push_back(v);
  }
  EXPECT_EQ(dups, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(got.header("Content-Type").value_or(""), "application/octet-stream");
  EXPECT_EQ(got.header("X-Request-Id").value_or(""), "bytes-1");
  EXPECT_EQ(got.header("X-Flavour").value_or(""), "std");

  for (const char* method : {"GET", "PUT", "PATCH", "DELETE"}) {
    const auto m = raw_call(
        s.port(), std::string(method) + " /proxy/" + name + "/m?q=1 HTTP/1.1\r\nHost: h\r\n");
    EXPECT_EQ(m.status, 203) << method;
    EXPECT_EQ(m.header("x-echo-method"), method);
  }
  EXPECT_EQ(target.seen().back().target, "/base/m?q=1");

  std::string large(5 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < large.size(); ++i)
    large[i] = static_cast<char>((i * 7919) >> 3);
  const auto big = http_call(s.port(), "PUT", "/proxy/" + name + "/big", large,
                             {{"Content-Type", "application/octet-stream"}});
  EXPECT_EQ(big.status, 203) << big.body.substr(0, 200);
  EXPECT_EQ(big.body.size(), large.size());
  EXPECT_TRUE(big.body == large) << "5 MiB back byte-exact";
  EXPECT_TRUE(target.seen().back().body == large) << "5 MiB at the target byte-exact";
}

}  // namespace
}  // namespace sluice::proxy::e2e
