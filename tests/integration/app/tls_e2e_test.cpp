// HTTPS through the real binary (issue #12): a certificate from a throwaway CA, the round trip
// on both listeners, what is refused (old TLS, plain HTTP, a silent client), the SIGHUP reload.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <openssl/ssl.h>
#include <regex>
#include <signal.h>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tls_client.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

class tls_e2e : public ::testing::Test {
 protected:
  tls_e2e() : identity_(ca_.issue("server")) {}

  sluice_process::env_map tls_env() {
    return {{"FILE_BUFFER_DIR", buffer_dir_.path()},
            {"SLUICE_TLS_CERT", identity_.cert_file},
            {"SLUICE_TLS_KEY", identity_.key_file}};
  }
  tls_options verified() const { return {ca_.ca_file()}; }

  temp_dir buffer_dir_;
  test_ca ca_;
  test_ca::issued identity_;
};

std::string run_curl(const std::string& args) {
  std::string out;
  FILE* pipe = ::popen(("curl -sS --max-time 10 " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr)
    return "popen failed";
  char chunk[4096];
  while (const std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe))
    out.append(chunk, n);
  ::pclose(pipe);
  return out;
}

void copy_over(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

TEST_F(tls_e2e, round_trip_with_a_verified_certificate) {
  sluice_process sluice(tls_env());
  tls_connection conn(sluice.port(), verified());
  EXPECT_EQ(conn.alpn(), "http/1.1");
  EXPECT_TRUE(conn.protocol() == "TLSv1.3" || conn.protocol() == "TLSv1.2") << conn.protocol();
  const auto live = conn.request("GET", "/health/live");
  EXPECT_EQ(live.status, 200) << live.raw;
  EXPECT_NE(live.body.find("alive"), std::string::npos) << live.raw;
  // Keep-alive over the same TLS session, and an error answer through it.
  EXPECT_EQ(conn.request("GET", "/no/such/thing").status, 404);
  EXPECT_EQ(conn.request("GET", "/health/live").status, 200);

  // An independent client (curl, its own OpenSSL use) that verifies against the CA, over
  // TLS 1.2 as well as 1.3.
  const std::string url = "https://localhost:" + std::to_string(sluice.port()) + "/health/live";
  EXPECT_NE(run_curl("--cacert " + ca_.ca_file() + " " + url).find("alive"), std::string::npos);
  EXPECT_NE(run_curl("--tlsv1.2 --tls-max 1.2 --cacert " + ca_.ca_file() + " " + url).find("alive"),
            std::string::npos);
  // Without the CA the certificate is not trusted: proof that curl did verify.
  EXPECT_NE(run_curl(url).find("certificate"), std::string::npos);
}

TEST_F(tls_e2e, metrics_listener_speaks_https_too) {
  auto env = tls_env();
  env["METRICS_ADDR"] = "127.0.0.1:0";
  sluice_process sluice(env);
  std::smatch m;
  const std::regex listening(R"(http\[metrics\]: listening on \S*:(\d+))");
  ASSERT_TRUE(sluice.wait_for_log("http[metrics]: listening on", 5s));
  const std::string log = sluice.log();
  ASSERT_TRUE(std::regex_search(log, m, listening)) << log;
  const auto port = static_cast<std::uint16_t>(std::stoi(m[1]));
  tls_connection conn(port, verified());
  const auto metrics = conn.request("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("sluice_http_tls_handshake_failures_total"), std::string::npos);
}

TEST_F(tls_e2e, tls_before_1_2_is_refused) {
  sluice_process sluice(tls_env());
  tls_options old = verified();
  old.max_version = TLS1_1_VERSION;
  EXPECT_ANY_THROW(tls_connection(sluice.port(), old));
  tls_connection good(sluice.port(), verified());
  EXPECT_EQ(good.request("GET", "/health/live").status, 200);
}

TEST_F(tls_e2e, plain_http_on_the_https_port_gets_a_plain_400_and_a_close) {
  sluice_process sluice(tls_env());
  const std::string reply =
      send_raw(sluice.port(), "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n", 5s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 400 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("\"https_required\""), std::string::npos) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  tls_connection good(sluice.port(), verified());
  EXPECT_EQ(good.request("GET", "/health/live").status, 200);
}

TEST_F(tls_e2e, a_client_that_never_says_hello_is_closed_at_the_read_timeout) {
  auto env = tls_env();
  env["HTTP_READ_TIMEOUT_MS"] = "500";
  env["HTTP_MAX_CONNECTIONS"] = "1";
  sluice_process sluice(env);
  raw_connection silent(sluice.port());
  EXPECT_TRUE(silent.closed_by_peer(5s)) << "the handshake timed out and the slot was freed";
  // The only slot is free again.
  tls_connection good(sluice.port(), verified());
  EXPECT_EQ(good.request("GET", "/health/live").status, 200);
}

TEST_F(tls_e2e, sighup_reloads_the_certificate_for_new_connections) {
  sluice_process sluice(tls_env());
  tls_connection before(sluice.port(), verified());
  const std::string first_serial = before.peer_serial();
  ASSERT_FALSE(first_serial.empty());

  const auto next = ca_.issue("next");
  copy_over(next.cert_file, identity_.cert_file);
  copy_over(next.key_file, identity_.key_file);
  ASSERT_EQ(::kill(sluice.pid(), SIGHUP), 0);
  ASSERT_TRUE(sluice.wait_for_log("tls: reloaded", 10s)) << sluice.log();

  tls_connection after(sluice.port(), verified());
  EXPECT_NE(after.peer_serial(), first_serial);
  EXPECT_EQ(after.request("GET", "/health/live").status, 200);
  // The connection made before the reload keeps its session.
  EXPECT_EQ(before.request("GET", "/health/live").status, 200);
  EXPECT_EQ(before.peer_serial(), first_serial);

  // A broken file on reload keeps the current certificate, and the daemon running.
  const std::string second_serial = after.peer_serial();
  { std::ofstream(identity_.key_file, std::ios::trunc) << "not a key\n"; }
  ASSERT_EQ(::kill(sluice.pid(), SIGHUP), 0);
  ASSERT_TRUE(sluice.wait_for_log("tls: reload failed", 10s)) << sluice.log();
  tls_connection kept(sluice.port(), verified());
  EXPECT_EQ(kept.peer_serial(), second_serial);
  EXPECT_EQ(kept.request("GET", "/health/live").status, 200);
}

TEST_F(tls_e2e, half_a_tls_configuration_is_a_start_up_error) {
  const auto only_cert = run_sluice(
      {}, {{"FILE_BUFFER_DIR", buffer_dir_.path()}, {"SLUICE_TLS_CERT", identity_.cert_file}});
  EXPECT_NE(only_cert.exit_code, 0);
  EXPECT_NE(only_cert.output.find("SLUICE_TLS_CERT and SLUICE_TLS_KEY"), std::string::npos)
      << only_cert.output;
  const auto unreadable = run_sluice({}, {{"FILE_BUFFER_DIR", buffer_dir_.path()},
                                          {"SLUICE_HTTP_ADDR", "127.0.0.1:0"},
                                          {"SLUICE_TLS_CERT", identity_.cert_file},
                                          {"SLUICE_TLS_KEY", ca_.dir() + "/missing.key"}});
  EXPECT_EQ(unreadable.exit_code, 2);
  EXPECT_NE(unreadable.output.find("SLUICE_TLS_KEY"), std::string::npos) << unreadable.output;
}

}  // namespace
}  // namespace sluice::test
