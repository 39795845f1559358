// Both ends under TLS through the real binary (issue #12): pushes over HTTPS, the relay
// publishing to a RabbitMQ TLS listener (amqps://, verified against the test's CA), and an
// independent client (rabbitmq-c, on the node's plain port) consuming what arrived.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "private_broker.hpp"
#include "relay_test_support.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tls_client.hpp"

namespace sluice::relay::test {
namespace {

using namespace std::chrono_literals;
using sluice::test::scoped_database;
using sluice::test::sluice_process;
using sluice::test::temp_dir;
using sluice::test::test_ca;
using sluice::test::tls_connection;

// A node of this test's own (the shared one has no TLS listener), below the ephemeral range.
constexpr std::uint16_t plain_port = 29792;
constexpr std::uint16_t dist_port = 29793;
constexpr std::uint16_t tls_port = 29794;

TEST(relay_tls, pushes_over_https_reach_rabbitmq_over_amqps) {
  test_ca ca;
  const auto broker_cert = ca.issue("broker");
  const auto sluice_cert = ca.issue("sluice");
  amqp::test::private_broker broker(plain_port, dist_port, "relaytls@localhost");
  broker.enable_tls({tls_port, ca.ca_file(), broker_cert.cert_file, broker_cert.key_file});
  broker.start();
  const std::string plain_url = "amqp://guest:guest@127.0.0.1:" + std::to_string(plain_port) + "/";

  scoped_database db;
  temp_dir buffer;
  const std::string q = unique_queue("relay.tls");
  sluice_process s({{"DATABASE_URL", db.url()},
                    {"RABBITMQ_URL", "amqps://guest:guest@localhost:" + std::to_string(tls_port) +
                                         "/?connection_timeout=5000"},
                    {"RABBITMQ_CA_FILE", ca.ca_file()},
                    {"SLUICE_TLS_CERT", sluice_cert.cert_file},
                    {"SLUICE_TLS_KEY", sluice_cert.key_file},
                    {"FILE_BUFFER_DIR", buffer.path()},
                    {"RELAY_SWEEP_INTERVAL_MS", "200"}});
  const auto https = [&] { return tls_connection(s.port(), {ca.ca_file()}); };

  // Strict readiness includes RabbitMQ: the relay's amqps connection is up.
  ASSERT_TRUE(eventually(
      [&] { return https().request("GET", "/health/ready?strict=true").status == 200; }, 30s))
      << https().request("GET", "/health/ready?strict=true").body << s.log();

  constexpr int n = 50;
  std::string body = R"({"items":[)";
  for (int i = 0; i < n; ++i)
    body += (i ? "," : "") + std::string(R"({"queue":")") + q + R"(","payload":{"i":)" +
            std::to_string(i) + "}}";
  body += "]}";
  auto conn = https();
  const auto pushed = conn.request("POST", "/api/v1/push", body);
  ASSERT_EQ(pushed.status, 201) << pushed.raw;
  const auto ids = nlohmann::json::parse(pushed.body)["items"];
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(n));

  // The answer comes once the rows are stored; the relay publishes them after. Consuming before
  // it declared the queue would find none.
  const auto published = [&] {
    const auto exposed = https().request("GET", "/metrics").body;
    const std::string name = "\nsluice_relay_published_total ";
    const auto at = exposed.find(name);
    return at != std::string::npos && std::stod(exposed.substr(at + name.size())) >= n;
  };
  ASSERT_TRUE(eventually(published, 20s)) << s.log();
  const auto got = consume_ids(plain_url, q, n, 10s);
  EXPECT_EQ(got.by_id.size(), static_cast<std::size_t>(n)) << s.log();
  for (const auto& item : ids)
    EXPECT_EQ(got.by_id.count(item["id"].get<std::string>()), 1u) << item;
  delete_rabbitmq_objects(plain_url, q);
}

}  // namespace
}  // namespace sluice::relay::test
