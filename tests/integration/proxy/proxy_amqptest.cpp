// The ingress side of the request proxy through the real binary and a real RabbitMQ, with the
// test playing the worker (test_worker.hpp).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "sluice/amqp/url.hpp"
#include "sluice/proxy/forwarding.hpp"
#include "sluice/services/service.hpp"

#include <gtest/gtest.h>

#include "independent_client.hpp"
#include "relay_test_support.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "test_worker.hpp"

namespace sluice::proxy::test {
namespace {

using namespace std::chrono_literals;
using sluice::relay::test::amqp_url;
using sluice::relay::test::eventually;
using sluice::test::http_call;
using sluice::test::http_connection;
using sluice::test::raw_connection;
using sluice::test::scoped_database;
using sluice::test::sluice_process;
using sluice::test::temp_dir;
using clock = std::chrono::steady_clock;

struct raw_response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string header(std::string_view lower) const {
    for (const auto& [n, v] : headers) {
      std::string l = n;
      std::transform(l.begin(), l.end(), l.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      if (l == lower)
        return v;
    }
    return {};
  }
  std::size_t count(std::string_view lower) const {
    std::size_t n = 0;
    for (const auto& [name, v] : headers) {
      std::string l = name;
      std::transform(l.begin(), l.end(), l.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      n += l == lower;
    }
    return n;
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

// One request on its own connection, "Connection: close" so the answer ends with the close.
raw_response raw_call(std::uint16_t port, const std::string& head, const std::string& body = {}) {
  raw_connection conn(port);
  const bool has_connection = head.find("\r\nConnection:") != std::string::npos;
  conn.send(head + "Content-Length: " + std::to_string(body.size()) + "\r\n" +
            (has_connection ? "" : "Connection: close\r\n") + "\r\n" + body);
  return parse_response(conn.receive(30s));
}

double metric(std::uint16_t port, const std::string& series) {
  const auto text = http_call(port, "GET", "/metrics").body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

services::service service_named(const std::string& name, std::vector<std::string> flavours) {
  services::service s;
  s.name = name;
  for (auto& f : flavours)
    s.flavours.push_back(services::flavour{f, ""});
  s.default_flavour = s.flavours.front().name;
  return s;
}

std::string unique(const std::string& prefix) {
  static std::atomic<int> n{0};
  return prefix + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(clock::now().time_since_epoch().count() % 1000000) + "-" +
         std::to_string(n++);
}

class proxy_e2e : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir buffer_;
  // SERVICE_NAME: one flavour "default" with a path in its URL; TARGET_SVC_NAME: std and green.
  std::string svc_ = unique("pxs");
  std::string multi_ = unique("pxm");

  ~proxy_e2e() override {
    const auto broker = amqp::url::parse(amqp_url());
    if (!broker)
      return;
    for (const auto& s :
         {service_named(svc_, {"default"}), service_named(multi_, {"std", "green"})}) {
      try {
        amqp::test::independent_client c(*broker);
        for (const auto& f : s.flavours)
          c.delete_queue(s.queue(f.name));
        c.delete_exchange(s.exchange());
      } catch (const std::exception&) {
      }
    }
  }

  sluice_process::env_map env(sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("RABBITMQ_URL", amqp_url());
    // The test is the worker: sluice's own would compete for the flavour queues.
    extra.try_emplace("SLUICE_ROLES", "ingress");
    extra.try_emplace("FILE_BUFFER_DIR", buffer_.path());
    extra.try_emplace("SERVICE_NAME", svc_);
    extra.try_emplace("DOWNSTREAM_URL", "http://127.0.0.1:9/base");
    extra.try_emplace("TARGET_SVC_NAME", multi_);
    extra.try_emplace("TARGET_SVC_FLAVOURS", "std,green");
    extra.try_emplace("LOG_LEVEL", "info");
    return extra;
  }

  static void wait_link(const sluice_process& s) {
    ASSERT_TRUE(s.wait_for_log("proxy: consuming replies", 20s)) << s.log();
  }
};

TEST_F(proxy_e2e, methods_headers_bodies_and_queries_round_trip_byte_exact) {
  test_worker worker(amqp_url(), service_named(svc_, {"default"}), "default");
  worker.start();
  sluice_process s(env());
  wait_link(s);

  std::string binary;
  for (int i = 0; i < 256; ++i)
    binary.push_back(static_cast<char>(i));
  const std::string head =
      "POST /proxy/" + svc_ +
      "/a%2Fb//c%20d?x=%2F&y=1&y=2&&z HTTP/1.1\r\n"
      "Host: gateway.example:8080\r\n"
      "Authorization: Bearer  t0k.en\r\n"
      "X-Dup: one\r\n"
      "Accept: */*\r\n"
      "x-dup: two\r\n"
      "X-Hop: must go\r\n"
      "Connection: close, X-Hop\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Authorization: Basic eA==\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
      "X-Request-Id: rt-1\r\n";
  const auto r = raw_call(s.port(), head, binary);
  ASSERT_EQ(r.status, 200) << r.body << s.log();
  EXPECT_EQ(r.body, binary) << "binary body back, byte-exact";
  EXPECT_EQ(r.header("x-echo-method"), "POST");
  // Relative to the flavour's URL (http://…/base): the worker prefixes that path.
  EXPECT_EQ(r.header("x-echo-target"), "/a%2Fb//c%20d?x=%2F&y=1&y=2&&z");
  EXPECT_EQ(r.header("content-type"), "application/octet-stream");
  EXPECT_EQ(r.count("set-cookie"), 2u) << "duplicate reply headers kept";
  EXPECT_EQ(r.count("connection"), 1u) << "the target's Connection is not passed back";
  EXPECT_EQ(r.header("x-request-id"), "rt-1");

  ASSERT_EQ(worker.received(), 1u);
  const auto got = worker.requests().front();
  EXPECT_EQ(got.service, svc_);
  EXPECT_EQ(got.flavour, "default");
  EXPECT_EQ(got.body, binary);
  EXPECT_GT(got.deadline_ms, 0);
  // Beast's header container groups a repeated name at its first occurrence: same-name lines
  // keep their order (the only order RFC 9110 5.3 makes significant), others keep theirs.
  const rpc::header_list expected_prefix = {
      {"Authorization", "Bearer  t0k.en"}, {"X-Dup", "one"}, {"x-dup", "two"}, {"Accept", "*/*"}};
  ASSERT_GE(got.headers.size(), expected_prefix.size());
  EXPECT_TRUE(std::equal(expected_prefix.begin(), expected_prefix.end(), got.headers.begin()))
      << rpc::format_header_block(got.headers);
  const auto find = [&](std::string_view name) -> std::string {
    for (const auto& [n, v] : got.headers) {
      if (n == name)
        return v;
    }
    return "<absent>";
  };
  for (const char* gone :
       {"Host", "X-Hop", "Connection", "Keep-Alive", "Proxy-Authorization", "Content-Length"})
    EXPECT_EQ(find(gone), "<absent>") << gone;
  EXPECT_EQ(find("X-Request-Id"), "rt-1");
  EXPECT_EQ(find("traceparent").substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_TRUE(valid_traceparent(find("traceparent")));
  EXPECT_EQ(find("X-Forwarded-For"), "127.0.0.1");
  EXPECT_EQ(find("X-Forwarded-Proto"), "http");
  EXPECT_EQ(find("X-Forwarded-Host"), "gateway.example:8080");

  // Every method, the empty remainder, and a 5 MiB body.
  for (const char* method : {"GET", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    const auto m = raw_call(s.port(), std::string(method) + " /proxy/" + svc_ +
                                          " HTTP/1.1\r\nHost: h\r\nX-Want-Status: 201\r\n");
    EXPECT_EQ(m.status, 201) << method << m.body;
    EXPECT_EQ(m.header("x-echo-method"), method);
    EXPECT_EQ(m.header("x-echo-target"), "");
  }
  const auto h = raw_call(s.port(), "HEAD /proxy/" + svc_ + "/x HTTP/1.1\r\nHost: h\r\n");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.header("x-echo-method"), "HEAD") << "HEAD goes on as HEAD";
  EXPECT_EQ(h.body, "");
  std::string large(5 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < large.size(); ++i)
    large[i] = static_cast<char>((i * 7919) >> 3);
  const auto big = http_call(s.port(), "PUT", "/proxy/" + svc_ + "/big", large,
                             {{"Content-Type", "application/octet-stream"}});
  EXPECT_EQ(big.status, 200);
  EXPECT_EQ(big.body.size(), large.size());
  EXPECT_TRUE(big.body == large) << "5 MiB back byte-exact";
  EXPECT_EQ(metric(s.port(), "sluice_proxy_pending"), 0);
}

TEST_F(proxy_e2e, unknown_service_flavour_and_timeout_header_are_client_errors) {
  sluice_process s(env());
  wait_link(s);
  auto r = http_call(s.port(), "GET", "/proxy/no-such-service/x");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"]["code"], "service_not_found");
  r = http_call(s.port(), "GET", "/proxy/" + multi_ + "/x", "", {{"X-Sluice-Flavour", "blue"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["code"], "unknown_flavour");
  r = http_call(s.port(), "GET", "/proxy/" + multi_ + "/x", "", {{"X-Sluice-Timeout-Ms", "soon"}});
  EXPECT_EQ(r.status, 400);
  // The async path is wired in the daemon: the request is stored and answered 202 at once.
  r = http_call(s.port(), "GET", "/proxy/" + multi_, "", {{"Prefer", "respond-async"}});
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json()["status"], "pending");
  EXPECT_EQ(r.header("location"), "/api/v1/requests/" + r.json()["id"].get<std::string>());
}

TEST_F(proxy_e2e, a_pinned_flavour_goes_to_its_queue_and_a_worker_error_is_its_json_error) {
  test_worker green(amqp_url(), service_named(multi_, {"std", "green"}), "green",
                    test_worker::mode::error);
  green.start();
  sluice_process s(env());
  wait_link(s);
  const auto r =
      http_call(s.port(), "GET", "/proxy/" + multi_ + "/x", "", {{"X-Sluice-Flavour", "green"}});
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "upstream_unavailable");
  EXPECT_EQ(green.received(), 1u);
  EXPECT_NE(http_call(s.port(), "GET", "/metrics")
                .body.find("sluice_proxy_requests_total{service=\"" + multi_ +
                           "\",flavour=\"green\",code=\"502\"} 1"),
            std::string::npos);
}

TEST_F(proxy_e2e, no_reply_by_the_deadline_is_504_and_the_message_expires_unconsumed) {
  sluice_process s(env());
  wait_link(s);
  const auto started = clock::now();
  const auto r = http_call(s.port(), "POST", "/proxy/" + svc_ + "/slow", "{}",
                           {{"X-Sluice-Timeout-Ms", "300"}});
  const auto took = clock::now() - started;
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "upstream_timeout");
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(metric(s.port(), "sluice_proxy_timeouts_total"), 1);
  EXPECT_EQ(metric(s.port(), "sluice_proxy_published_total"), 1);
  // A worker that starts after the deadline never sees the request: it expired in the queue.
  test_worker late(amqp_url(), service_named(svc_, {"default"}), "default");
  late.start();
  EXPECT_FALSE(late.wait_received(1, 1500ms)) << "the expired request was delivered";
}

TEST_F(proxy_e2e, a_reply_after_the_deadline_is_dropped_and_counted) {
  test_worker worker(amqp_url(), service_named(svc_, {"default"}), "default",
                     test_worker::mode::hold);
  worker.start();
  sluice_process s(env());
  wait_link(s);
  const auto r = http_call(s.port(), "GET", "/proxy/" + svc_, "", {{"X-Sluice-Timeout-Ms", "200"}});
  EXPECT_EQ(r.status, 504);
  ASSERT_EQ(worker.received(), 1u);
  worker.release_held();
  EXPECT_TRUE(
      eventually([&] { return metric(s.port(), "sluice_proxy_late_replies_total") == 1; }, 5s))
      << http_call(s.port(), "GET", "/metrics").body;
}

TEST_F(proxy_e2e, a_client_that_disconnects_frees_its_waiter) {
  test_worker worker(amqp_url(), service_named(svc_, {"default"}), "default",
                     test_worker::mode::hold);
  worker.start();
  sluice_process s(env());
  wait_link(s);
  {
    raw_connection conn(s.port());
    conn.send("GET /proxy/" + svc_ + " HTTP/1.1\r\nHost: h\r\nX-Sluice-Timeout-Ms: 30000\r\n\r\n");
    ASSERT_TRUE(worker.wait_received(1, 10s));
    EXPECT_EQ(metric(s.port(), "sluice_proxy_pending"), 1);
  }
  const auto closed = clock::now();
  EXPECT_TRUE(eventually([&] { return metric(s.port(), "sluice_proxy_pending") == 0; }, 5s));
  EXPECT_LT(clock::now() - closed, 5s) << "freed long before its 30 s deadline";
  EXPECT_EQ(metric(s.port(), "sluice_proxy_pending_bytes"), 0);
  worker.release_held();
  EXPECT_TRUE(
      eventually([&] { return metric(s.port(), "sluice_proxy_late_replies_total") == 1; }, 5s));
}

TEST_F(proxy_e2e, the_pending_bound_answers_503_with_retry_after_until_a_slot_frees) {
  test_worker worker(amqp_url(), service_named(svc_, {"default"}), "default",
                     test_worker::mode::hold);
  worker.start();
  sluice_process s(env({{"PROXY_MAX_PENDING", "2"}}));
  wait_link(s);
  std::vector<std::thread> waiting;
  std::atomic<int> ok{0};
  for (int i = 0; i < 2; ++i) {
    waiting.emplace_back([&] {
      if (http_call(s.port(), "GET", "/proxy/" + svc_).status == 200)
        ++ok;
    });
  }
  ASSERT_TRUE(worker.wait_received(2, 10s));
  const auto refused = raw_call(s.port(), "GET /proxy/" + svc_ + " HTTP/1.1\r\nHost: h\r\n");
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("proxy_overloaded"), std::string::npos) << refused.body;
  EXPECT_EQ(refused.header("retry-after"), "1");
  worker.release_held();
  for (auto& t : waiting)
    t.join();
  EXPECT_EQ(ok, 2);
  std::thread next([&] { EXPECT_EQ(http_call(s.port(), "GET", "/proxy/" + svc_).status, 200); });
  ASSERT_TRUE(worker.wait_received(3, 10s));
  worker.release_held();
  next.join();
}

TEST_F(proxy_e2e, rabbitmq_unreachable_is_503_broker_unavailable_at_once) {
  // A port nothing listens on: the client keeps trying to connect.
  sluice_process s(env({{"RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:9/"}}));
  const auto started = clock::now();
  const auto r = raw_call(s.port(), "GET /proxy/" + svc_ + " HTTP/1.1\r\nHost: h\r\n");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("broker_unavailable"), std::string::npos) << r.body;
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_LT(clock::now() - started, 1s);
}

std::vector<double> timed_calls(std::uint16_t port, const std::string& target, int n) {
  http_connection conn(port);
  std::vector<double> ms;
  ms.reserve(n);
  for (int i = 0; i < n; ++i) {
    const auto t0 = clock::now();
    const auto r = conn.request("GET", target);
    ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    if (r.status != 200) {
      ADD_FAILURE() << "status " << r.status << " " << r.body;
      break;
    }
  }
  return ms;
}

void print_percentiles(const char* what, std::vector<double> ms, double seconds) {
  std::sort(ms.begin(), ms.end());
  if (ms.empty())
    return;
  const auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * ms.size()))];
  };
  std::printf("[measure] %s: n=%zu p50=%.3f ms p99=%.3f ms max=%.3f ms rate=%.0f/s\n", what,
              ms.size(), at(0.5), at(0.99), ms.back(), ms.size() / seconds);
}

TEST_F(proxy_e2e, measure_round_trip_latency_with_an_immediate_worker) {
  test_worker worker(amqp_url(), service_named(svc_, {"default"}), "default");
  worker.start();
  sluice_process s(env());
  ASSERT_TRUE(
      eventually([&] { return http_call(s.port(), "GET", "/proxy/" + svc_).status == 200; }, 20s));
  const std::string target = "/proxy/" + svc_ + "/m";
  timed_calls(s.port(), target, 200);  // warm-up
  // Baseline of the same client against a route sluice answers itself.
  auto t0 = clock::now();
  const auto direct = timed_calls(s.port(), "/health/live", 2000);
  print_percentiles("baseline GET /health/live, sequential", direct,
                    std::chrono::duration<double>(clock::now() - t0).count());
  t0 = clock::now();
  const auto sequential = timed_calls(s.port(), target, 2000);
  print_percentiles("proxy round trip, sequential", sequential,
                    std::chrono::duration<double>(clock::now() - t0).count());
  std::vector<std::vector<double>> per(50);
  std::vector<std::thread> threads;
  t0 = clock::now();
  for (int c = 0; c < 50; ++c)
    threads.emplace_back([&, c] { per[c] = timed_calls(s.port(), target, 100); });
  for (auto& t : threads)
    t.join();
  const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
  std::vector<double> all;
  for (auto& v : per)
    all.insert(all.end(), v.begin(), v.end());
  print_percentiles("proxy round trip, concurrency 50", all, seconds);
}

}  // namespace
}  // namespace sluice::proxy::test
