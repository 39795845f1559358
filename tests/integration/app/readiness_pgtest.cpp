// /health/ready against the real dependencies: each one is reported by name, and losing any of
// them turns the probe to 503 until it is back. PostgreSQL and RabbitMQ sit behind TCP proxies
// the test cuts, so the shared servers keep running; the buffer directory is moved away.
#include <filesystem>
#include <functional>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// Polls /health/ready until `want` holds for its answer; returns the last answer.
http_result ready_until(std::uint16_t port, const std::function<bool(const http_result&)>& want,
                        std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  http_result last;
  do {
    last = http_call(port, "GET", "/health/ready");
    if (want(last))
      return last;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  ADD_FAILURE() << "last /health/ready answer: " << last.status << " " << last.body;
  return last;
}

bool all_ready(const http_result& r) {
  return r.status == 200;
}

// 503 with exactly `failing` down and every other check up.
std::function<bool(const http_result&)> only_failing(const std::string& failing) {
  return [failing](const http_result& r) {
    if (r.status != 503)
      return false;
    const json body = json::parse(r.body);
    for (const auto& [name, check] : body["checks"].items()) {
      if (check["ok"].get<bool>() == (name == failing))
        return false;
    }
    return body["status"] == "not_ready";
  };
}

TEST(readiness, names_each_dependency_and_is_503_while_any_is_lost) {
  scoped_database db;
  tcp_proxy pg("127.0.0.1", url_port(db.url()));
  const std::string amqp_url = require_env("SLUICE_TEST_AMQP_URL");
  tcp_proxy mq("127.0.0.1", url_port(amqp_url));
  temp_dir buffer;
  sluice_process sluice({{"DATABASE_URL", url_with_port(db.url(), pg.port())},
                         {"RABBITMQ_URL", url_with_port(amqp_url, mq.port())},
                         {"FILE_BUFFER_DIR", buffer.path()},
                         {"DB_CONNECT_TIMEOUT_MS", "1000"},
                         {"DB_STATEMENT_TIMEOUT_MS", "1000"}});

  const json ready = ready_until(sluice.port(), all_ready).json();
  EXPECT_EQ(ready["status"], "ready");
  ASSERT_EQ(ready["checks"].size(), 3u) << ready.dump();
  for (const char* name : {"postgres", "rabbitmq", "buffer"}) {
    EXPECT_TRUE(ready["checks"][name]["ok"].get<bool>()) << name;
    EXPECT_FALSE(ready["checks"][name]["detail"].get<std::string>().empty()) << name;
  }

  pg.cut();
  auto down = ready_until(sluice.port(), only_failing("postgres"));
  EXPECT_NE(down.body.find("unreachable"), std::string::npos) << down.body;
  EXPECT_EQ(http_call(sluice.port(), "GET", "/health/live").status, 200) << "alive regardless";
  pg.restore();
  ready_until(sluice.port(), all_ready);

  mq.cut();
  ready_until(sluice.port(), only_failing("rabbitmq"));
  mq.restore();
  ready_until(sluice.port(), all_ready, 30s);  // the relay reconnects with backoff

  // A buffer directory that disappears (an unmounted volume, a cleanup job) would lose what
  // sluice writes there next: not ready.
  const auto failover = std::filesystem::path(buffer.path()) / "failover";
  std::filesystem::rename(failover, buffer.path() + "/moved-away");
  down = ready_until(sluice.port(), only_failing("buffer"));
  EXPECT_NE(down.body.find("is not writable: No such file or directory"), std::string::npos)
      << down.body;
  std::filesystem::rename(buffer.path() + "/moved-away", failover);
  ready_until(sluice.port(), all_ready);
}

}  // namespace
}  // namespace sluice::test
