// The proxy against a RabbitMQ of the test's own (port 29972): a resource alarm and a restart
// under the real binary, with the test playing the worker.
#include <chrono>
#include <memory>
#include <string>

#include "sluice/services/service.hpp"

#include <gtest/gtest.h>

#include "private_broker.hpp"
#include "relay_test_support.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"
#include "test_worker.hpp"

namespace sluice::proxy::test {
namespace {

using namespace std::chrono_literals;
using sluice::relay::test::amqp_url;
using sluice::relay::test::eventually;
using sluice::test::http_call;
using sluice::test::scoped_database;
using sluice::test::sluice_process;
using sluice::test::temp_dir;
using clock = std::chrono::steady_clock;

services::service one_flavour(const std::string& name) {
  services::service s;
  s.name = name;
  s.flavours.push_back(services::flavour{"default", ""});
  s.default_flavour = "default";
  return s;
}

bool is_broker_unavailable(const sluice::test::http_result& r) {
  return r.status == 503 && r.body.find("broker_unavailable") != std::string::npos &&
         !r.header("retry-after").empty();
}

TEST(proxy_chaos, a_resource_alarm_and_a_restart_give_quick_503s_then_recovery) {
  amqp::test::private_broker broker(29972, 29973, "proxytest@localhost");
  broker.start();
  const std::string url = sluice::test::url_with_port(amqp_url(), 29972);
  const std::string svc = "pxc-" + std::to_string(::getpid());
  auto worker = std::make_unique<test_worker>(url, one_flavour(svc), "default");
  worker->start();
  scoped_database db;
  temp_dir buffer;
  sluice_process s({{"DATABASE_URL", db.url()},
                    {"RABBITMQ_URL", url},
                    {"SLUICE_ROLES", "ingress"},  // the test is the worker
                    {"FILE_BUFFER_DIR", buffer.path()},
                    {"SERVICE_NAME", svc},
                    {"DOWNSTREAM_URL", "http://127.0.0.1:9"}});
  ASSERT_TRUE(s.wait_for_log("proxy: consuming replies", 20s)) << s.log();
  const std::string target = "/proxy/" + svc + "/x";
  const std::map<std::string, std::string> short_deadline = {{"X-Sluice-Timeout-Ms", "500"}};
  EXPECT_EQ(http_call(s.port(), "GET", target, "", short_deadline).status, 200);

  // Alarm: RabbitMQ blocks the connection at its next publish and says so; from then on the
  // proxy answers 503 without publishing.
  ASSERT_EQ(broker.ctl("set_vm_memory_high_watermark 0.000001"), 0);
  EXPECT_TRUE(eventually(
      [&] { return is_broker_unavailable(http_call(s.port(), "GET", target, "", short_deadline)); },
      20s))
      << s.log();
  auto t0 = clock::now();
  EXPECT_TRUE(is_broker_unavailable(http_call(s.port(), "GET", target)));
  EXPECT_LT(clock::now() - t0, 500ms) << "answered at once, not at the 60 s deadline";
  ASSERT_EQ(broker.ctl("set_vm_memory_high_watermark 0.4"), 0);
  EXPECT_TRUE(eventually(
      [&] { return http_call(s.port(), "GET", target, "", short_deadline).status == 200; }, 20s))
      << s.log();

  // Restart: 503 while it is down, then answered again without restarting sluice.
  worker.reset();
  broker.stop();
  t0 = clock::now();
  EXPECT_TRUE(is_broker_unavailable(http_call(s.port(), "GET", target)));
  EXPECT_LT(clock::now() - t0, 500ms);
  broker.start();
  worker = std::make_unique<test_worker>(url, one_flavour(svc), "default");
  worker->start();
  EXPECT_TRUE(eventually(
      [&] { return http_call(s.port(), "GET", target, "", short_deadline).status == 200; }, 60s))
      << s.log();
}

}  // namespace
}  // namespace sluice::proxy::test
