// The real binary's HTTP core: routing errors, limits, timeouts, probes, metrics, shutdown.
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <signal.h>
#include <thread>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

class http_server : public ::testing::Test {
 protected:
  temp_dir buffer_dir_;
  sluice_process::env_map base_env() { return {{"FILE_BUFFER_DIR", buffer_dir_.path()}}; }
};

// Every error is `{"error":{"code":…,"message":…}}` and nothing else, with a request id.
void expect_json_error(const http_result& res, int status, const std::string& code) {
  EXPECT_EQ(res.status, status);
  EXPECT_EQ(res.header("content-type"), "application/json");
  EXPECT_EQ(res.header("x-request-id").size(), 36u) << "generated request id";
  const auto body = res.json();
  ASSERT_TRUE(body.is_object()) << res.body;
  EXPECT_EQ(body.size(), 1u) << res.body;
  const auto& error = body.at("error");
  EXPECT_EQ(error.size(), 2u) << res.body;
  EXPECT_EQ(error.at("code"), code) << res.body;
  ASSERT_TRUE(error.at("message").is_string()) << res.body;
  EXPECT_FALSE(error.at("message").get<std::string>().empty()) << res.body;
}

// A request whose body stops after 10 of its 100 bytes: the server is reading it, for as long
// as the read timeout allows.
const std::string body_never_finished =
    "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";

// The request id of a raw reply: generated ids are 36-character UUIDs.
bool has_generated_request_id(const std::string& reply) {
  static const std::regex id("\r\nX-Request-Id: [0-9a-f-]{36}\r\n", std::regex::icase);
  return std::regex_search(reply, id);
}

TEST_F(http_server, probes_answer_and_unknown_routes_get_json_errors) {
  sluice_process sluice(base_env());
  auto live = http_call(sluice.port(), "GET", "/health/live");
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(live.json()["status"], "alive");
  EXPECT_EQ(http_call(sluice.port(), "GET", "/health").status, 200);

  expect_json_error(http_call(sluice.port(), "GET", "/no/such/thing"), 404, "not_found");
  auto wrong_method = http_call(sluice.port(), "DELETE", "/health/live");
  expect_json_error(wrong_method, 405, "method_not_allowed");
  EXPECT_EQ(wrong_method.header("allow"), "GET, HEAD");
}

TEST_F(http_server, head_is_get_without_the_body) {
  sluice_process sluice(base_env());
  http_connection conn(sluice.port());
  const auto get = conn.request("GET", "/health/live");
  // A raw reply: a client library would wait for the body that Content-Length announces.
  const std::string head = send_raw(
      sluice.port(), "HEAD /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 2s);
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: " + std::to_string(get.body.size()) + "\r\n"),
            std::string::npos)
      << head;
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "no body after the headers: " << head;
  EXPECT_EQ(conn.request("GET", "/health/live").status, 200) << "keep-alive unaffected";
}

TEST_F(http_server, request_framing_rules_of_http_1_1) {
  sluice_process sluice(base_env());
  // No Host: 400 (RFC 9112 3.2).
  std::string reply = send_raw(sluice.port(), "GET /health HTTP/1.1\r\n\r\n", 2s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_NE(reply.find("without Host"), std::string::npos) << reply;
  // Absolute form is routed by its path (RFC 9112 3.2.2).
  reply = send_raw(sluice.port(),
                   "GET http://sluice.example/health/live HTTP/1.1\r\nHost: sluice.example\r\n"
                   "Connection: close\r\n\r\n",
                   2s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  // A transfer coding sluice cannot undo: 501 (RFC 9112 6.1).
  reply = send_raw(sluice.port(),
                   "POST /api/v1/push HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked"
                   "\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                   2s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 501", 0), 0u) << reply;
  // A request line longer than the header limit: 414, not 431.
  reply = send_raw(sluice.port(),
                   "GET /" + std::string(20'000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 2s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 414", 0), 0u) << reply.substr(0, 200);
  EXPECT_EQ(http_call(sluice.port(), "GET", "/health").status, 200);
}

TEST_F(http_server, request_id_is_echoed_or_generated) {
  sluice_process sluice(base_env());
  auto echoed = http_call(sluice.port(), "GET", "/health", "", {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(echoed.header("x-request-id"), "abc-123");
  auto generated = http_call(sluice.port(), "GET", "/health");
  EXPECT_EQ(generated.header("x-request-id").size(), 36u);
  auto too_long =
      http_call(sluice.port(), "GET", "/health", "", {{"X-Request-Id", std::string(200, 'x')}});
  EXPECT_EQ(too_long.header("x-request-id").size(), 36u) << "over-long ids are replaced";
  // Ids go into log lines: blanks and bytes outside printable ASCII are not echoed.
  for (const std::string bad : {"two words", "caf\xc3\xa9"}) {
    auto res = http_call(sluice.port(), "GET", "/health", "", {{"X-Request-Id", bad}});
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.header("x-request-id").size(), 36u) << bad;
  }
  // Errors carry the client's id too.
  auto missing = http_call(sluice.port(), "GET", "/nope", "", {{"X-Request-Id", "err-1"}});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.header("x-request-id"), "err-1");
}

TEST_F(http_server, keep_alive_serves_many_requests_on_one_connection) {
  sluice_process sluice(base_env());
  http_connection conn(sluice.port());
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(conn.request("GET", "/health/live").status, 200);
  auto metrics = conn.request("GET", "/metrics").body;
  EXPECT_NE(metrics.find("sluice_http_connections{listener=\"api\"} 1\n"), std::string::npos)
      << metrics;
}

TEST_F(http_server, body_over_the_limit_gets_413) {
  auto env = base_env();
  env["HTTP_MAX_BODY_BYTES"] = "2k";
  sluice_process sluice(env);
  auto small = http_call(sluice.port(), "POST", "/health", std::string(1000, 'a'));
  EXPECT_EQ(small.status, 405) << "within the limit the router answers";
  expect_json_error(http_call(sluice.port(), "POST", "/health", std::string(4096, 'a')), 413,
                    "body_too_large");
  // Chunked bodies have no Content-Length: the parser's limit must still hold.
  const std::string chunked =
      "POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1000\r\n" +
      std::string(4096, 'b') + "\r\n0\r\n\r\n";
  EXPECT_NE(send_raw(sluice.port(), chunked, 2s).find("HTTP/1.1 413"), std::string::npos);
}

TEST_F(http_server, expect_100_continue_is_honoured) {
  sluice_process sluice(base_env());
  const std::string head =
      "POST /api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: "
      "100-continue\r\nConnection: close\r\n\r\n";
  const std::string reply = send_raw(sluice.port(), head, 1s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 100 Continue", 0), 0u) << reply;
  // A body no route takes is not asked for: the 404 (or 405) comes at once, without 100.
  const std::string nowhere = send_raw(sluice.port(),
                                       "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                       "Expect: 100-continue\r\n\r\n",
                                       1s);
  EXPECT_EQ(nowhere.rfind("HTTP/1.1 404", 0), 0u) << nowhere;
  // An HTTP/1.0 client must not get a 1xx: the final answer comes once the body is there.
  const std::string old_client =
      "POST /health HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi";
  const std::string answer = send_raw(sluice.port(), old_client, 2s);
  EXPECT_EQ(answer.find(" 100 "), std::string::npos) << answer;
  EXPECT_EQ(answer.rfind("HTTP/1.0 ", 0), 0u) << answer;
}

TEST_F(http_server, headers_over_the_limit_get_431) {
  auto env = base_env();
  env["HTTP_MAX_HEADER_BYTES"] = "2k";
  sluice_process sluice(env);
  expect_json_error(
      http_call(sluice.port(), "GET", "/health", "", {{"X-Big", std::string(4096, 'h')}}), 431,
      "headers_too_large");
}

TEST_F(http_server, malformed_requests_get_400_and_the_process_survives) {
  sluice_process sluice(base_env());
  const std::string reply = send_raw(sluice.port(), "THIS IS NOT HTTP\r\n\r\n", 2s);
  EXPECT_NE(reply.find("HTTP/1.1 400"), std::string::npos) << reply;
  EXPECT_NE(reply.find("{\"error\":{\"code\":\"bad_request\",\"message\":"), std::string::npos)
      << reply;
  EXPECT_TRUE(has_generated_request_id(reply)) << reply;
  EXPECT_EQ(http_call(sluice.port(), "GET", "/health").status, 200);
}

TEST_F(http_server, idle_keep_alive_connections_are_closed_after_the_idle_timeout) {
  auto env = base_env();
  env["HTTP_IDLE_TIMEOUT_MS"] = "300";
  sluice_process sluice(env);
  http_connection conn(sluice.port());
  ASSERT_EQ(conn.request("GET", "/health").status, 200);
  EXPECT_TRUE(conn.closed_by_peer(3s));
}

TEST_F(http_server, a_request_that_never_completes_is_cut_by_the_read_timeout) {
  auto env = base_env();
  env["HTTP_READ_TIMEOUT_MS"] = "300";
  sluice_process sluice(env);
  const auto started = std::chrono::steady_clock::now();
  const std::string reply = send_raw(sluice.port(), "GET /health HTTP/1.1\r\nHost: x\r\n", 5s);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_LT(elapsed, 3s) << "the server closed the slow connection";
  EXPECT_EQ(reply.find("200 OK"), std::string::npos);
}

TEST_F(http_server, a_body_that_stops_arriving_is_cut_by_the_read_timeout) {
  auto env = base_env();
  env["HTTP_READ_TIMEOUT_MS"] = "300";
  sluice_process sluice(env);
  raw_connection conn(sluice.port());
  conn.send(body_never_finished);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(conn.closed_by_peer(5s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_EQ(http_call(sluice.port(), "GET", "/health").status, 200);
}

TEST_F(http_server, connections_over_the_maximum_get_503_with_retry_after) {
  auto env = base_env();
  env["HTTP_MAX_CONNECTIONS"] = "2";
  sluice_process sluice(env);
  http_connection a(sluice.port());
  http_connection b(sluice.port());
  ASSERT_EQ(a.request("GET", "/health").status, 200);
  ASSERT_EQ(b.request("GET", "/health").status, 200);
  const std::string reply = send_raw(sluice.port(), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 2s);
  EXPECT_NE(reply.find("HTTP/1.1 503"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Retry-After: 1"), std::string::npos) << reply;
  EXPECT_NE(reply.find("\"too_many_connections\""), std::string::npos) << reply;
  EXPECT_TRUE(has_generated_request_id(reply)) << reply;
}

TEST_F(http_server, metrics_pass_promtool_and_count_requests_by_route_and_code) {
  sluice_process sluice(base_env());
  http_call(sluice.port(), "GET", "/health");
  http_call(sluice.port(), "GET", "/missing");
  const std::string text = http_call(sluice.port(), "GET", "/metrics").body;
  EXPECT_NE(
      text.find("sluice_http_requests_total{route=\"/health\",method=\"GET\",code=\"200\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("sluice_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} 1\n"),
      std::string::npos);
  EXPECT_NE(text.find("# TYPE sluice_http_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("sluice_build_info{version=\""), std::string::npos);
  temp_dir dir;
  const std::string path = dir.path() + "/metrics.txt";
  std::ofstream(path) << text;
  EXPECT_EQ(std::system(("promtool check metrics < " + path).c_str()), 0);
}

TEST_F(http_server, metrics_addr_or_metrics_port_serve_probes_and_metrics_on_a_second_listener) {
  for (const auto& [name, value] :
       std::map<std::string, std::string>{{"METRICS_ADDR", "127.0.0.1:0"}, {"METRICS_PORT", "0"}}) {
    auto env = base_env();
    env[name] = value;
    sluice_process sluice(env);
    ASSERT_TRUE(sluice.wait_for_log("http[metrics]: listening on", 5s)) << sluice.log();
    std::smatch m;
    const std::string log = sluice.log();
    ASSERT_TRUE(std::regex_search(
        log, m, std::regex(R"(http\[metrics\]: listening on 127\.0\.0\.1:(\d+))")))
        << log;
    const auto port = static_cast<std::uint16_t>(std::stoi(m[1]));
    EXPECT_NE(port, sluice.port());
    EXPECT_EQ(http_call(port, "GET", "/metrics").status, 200) << name;
    EXPECT_EQ(http_call(port, "GET", "/health/live").status, 200) << name;
    EXPECT_EQ(http_call(port, "POST", "/api/v1/push", "{}").status, 404)
        << name << ": only probes and metrics there";
  }
}

TEST_F(http_server, a_buffer_directory_that_cannot_be_created_stops_start_up) {
  // Without its buffer sluice could not keep its promise during a PostgreSQL outage, so it
  // refuses to start rather than run degraded. (/proc refuses mkdir even to root.)
  const auto r = run_sluice(
      {}, {{"FILE_BUFFER_DIR", "/proc/sluice-buffer"}, {"SLUICE_HTTP_ADDR", "127.0.0.1:0"}});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FILE_BUFFER_DIR must be a writable directory"), std::string::npos)
      << r.output;
}

TEST_F(http_server, sigterm_and_sigint_close_idle_connections_and_exit_zero) {
  for (const int signo : {SIGTERM, SIGINT}) {
    sluice_process sluice(base_env());
    http_connection idle(sluice.port());
    ASSERT_EQ(idle.request("GET", "/health").status, 200);
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(sluice.stop(signo), 0) << sluice.log();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s)
        << "idle connections do not hold shutdown";
    EXPECT_NE(sluice.log().find("shutdown: signal " + std::to_string(signo) + " received"),
              std::string::npos)
        << sluice.log();
    EXPECT_NE(sluice.log().find("shutdown: complete"), std::string::npos);
  }
}

TEST_F(http_server, a_signal_right_after_the_port_opens_still_drains_and_exits_zero) {
  for (int i = 0; i < 3; ++i) {
    sluice_process sluice(base_env());  // returns as soon as "listening on" is logged
    EXPECT_EQ(sluice.stop(SIGTERM), 0) << sluice.log();
  }
}

TEST_F(http_server, a_request_in_flight_at_sigterm_is_answered_then_the_connection_closes) {
  sluice_process sluice(base_env());
  raw_connection conn(sluice.port());
  conn.send("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
  std::this_thread::sleep_for(100ms);  // the request has started: the server is reading it
  ::kill(sluice.pid(), SIGTERM);
  ASSERT_TRUE(sluice.wait_for_log("shutdown: signal 15 received", 5s)) << sluice.log();
  // The log line is written before the drain closes the listener on a later turn of the
  // loop, so wait for the refusal; the request in flight keeps the drain open meanwhile.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool accepting = true;
  while (accepting && std::chrono::steady_clock::now() < deadline) {
    accepting = accepts_connections(sluice.port());
    if (accepting)
      std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(accepting) << "no new connections while draining";
  conn.send("56789");
  const std::string reply = conn.receive(5s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 405", 0), 0u) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  EXPECT_EQ(sluice.wait_for_exit(5s), 0) << sluice.log();
}

TEST_F(http_server, requests_still_running_when_the_grace_period_ends_are_cut_and_exit_is_zero) {
  auto env = base_env();
  env["SHUTDOWN_GRACE_MS"] = "1000";
  sluice_process sluice(env);
  raw_connection conn(sluice.port());
  conn.send(body_never_finished);
  std::this_thread::sleep_for(100ms);
  const auto started = std::chrono::steady_clock::now();
  ::kill(sluice.pid(), SIGTERM);
  EXPECT_TRUE(conn.closed_by_peer(10s));
  const auto cut_after = std::chrono::steady_clock::now() - started;
  EXPECT_GE(cut_after, 900ms) << "the request had its grace period";
  EXPECT_LT(cut_after, 5s);
  EXPECT_EQ(sluice.wait_for_exit(10s), 0) << sluice.log();
  EXPECT_NE(sluice.log().find("grace period over, closing 1 connections"), std::string::npos)
      << sluice.log();
}

TEST_F(http_server, a_second_signal_ends_the_grace_period_and_the_exit_is_still_zero) {
  sluice_process sluice(base_env());  // SHUTDOWN_GRACE_MS 10 s by default
  raw_connection conn(sluice.port());
  conn.send(body_never_finished);
  std::this_thread::sleep_for(100ms);
  ::kill(sluice.pid(), SIGINT);
  ASSERT_TRUE(sluice.wait_for_log("draining for up to 10000 ms", 5s)) << sluice.log();
  const auto started = std::chrono::steady_clock::now();
  ::kill(sluice.pid(), SIGINT);
  EXPECT_TRUE(conn.closed_by_peer(5s));
  EXPECT_EQ(sluice.wait_for_exit(8s), 0) << sluice.log();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_NE(sluice.log().find("second signal 2: closing connections in flight now"),
            std::string::npos)
      << sluice.log();
}

TEST_F(http_server, log_level_filters_what_is_written) {
  const std::string request_line = "http[api]: GET /health status=200";
  {
    sluice_process verbose(base_env());  // the tests' default is LOG_LEVEL=debug
    ASSERT_EQ(http_call(verbose.port(), "GET", "/health").status, 200);
    EXPECT_TRUE(verbose.wait_for_log(request_line, 2s)) << verbose.log();
  }
  auto env = base_env();
  env["LOG_LEVEL"] = "info";
  sluice_process quiet(env);
  ASSERT_EQ(http_call(quiet.port(), "GET", "/health").status, 200);
  EXPECT_EQ(quiet.stop(SIGTERM), 0);
  const std::string log = quiet.log();
  EXPECT_EQ(log.find(request_line), std::string::npos) << log;
  EXPECT_EQ(log.find(" debug "), std::string::npos) << log;
  EXPECT_NE(log.find(" info "), std::string::npos) << log;
}

}  // namespace
}  // namespace sluice::test
