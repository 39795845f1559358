// /health/ready against the real dependencies. Readiness means "this instance can acknowledge
// durable pushes": losing PostgreSQL or RabbitMQ leaves it 200 "degraded" (the file buffer takes
// the writes), and only losing PostgreSQL and the buffer together makes it 503 "not_ready".
// PostgreSQL and RabbitMQ sit behind TCP proxies the test cuts, so the shared servers keep
// running; the buffer directory is moved away.
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

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
using answer_test = std::function<bool(const http_result&)>;

// Polls `target` until `want` holds for its answer; returns the last answer.
http_result ready_until(std::uint16_t port, const answer_test& want,
                        std::chrono::milliseconds timeout = 20s,
                        const std::string& target = "/health/ready") {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  http_result last;
  do {
    last = http_call(port, "GET", target);
    if (want(last))
      return last;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  ADD_FAILURE() << "last " << target << " answer: " << last.status << " " << last.body;
  return last;
}

// The answer has `code` and `status`, and exactly the checks in `failing` fail.
answer_test is(int code, const std::string& status, const std::set<std::string>& failing = {}) {
  return [=](const http_result& r) {
    if (r.status != code)
      return false;
    const json body = json::parse(r.body);
    for (const auto& [name, check] : body["checks"].items()) {
      if (check["ok"].get<bool>() == failing.contains(name))
        return false;
    }
    return body["status"] == status;
  };
}

std::optional<double> sluice_ready(std::uint16_t port) {
  std::istringstream text(http_call(port, "GET", "/metrics").body);
  for (std::string line; std::getline(text, line);) {
    if (line.rfind("sluice_ready ", 0) == 0)
      return std::stod(line.substr(13));
  }
  return std::nullopt;
}

// Waits until a scrape shows sluice_ready == want (a scrape re-evaluates readiness, so no probe
// is needed for it to move).
void expect_gauge(std::uint16_t port, double want) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::optional<double> last;
  while (std::chrono::steady_clock::now() < deadline) {
    last = sluice_ready(port);
    if (last == want)
      return;
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "sluice_ready is " << (last ? std::to_string(*last) : "missing") << ", want "
                << want;
}

const std::string strict = "/health/ready?strict=true";

TEST(readiness, stays_200_while_the_buffer_takes_pushes_and_503_only_when_nothing_can) {
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
  const auto port = sluice.port();

  const json ready = ready_until(port, is(200, "ready")).json();
  ASSERT_EQ(ready["checks"].size(), 7u) << ready.dump();
  for (const char* name :
       {"postgres", "rabbitmq", "buffer", "workers", "deliveries", "registry", "database"}) {
    EXPECT_TRUE(ready["checks"][name]["ok"].get<bool>()) << name;
    EXPECT_FALSE(ready["checks"][name]["detail"].get<std::string>().empty()) << name;
  }
  EXPECT_EQ(http_call(port, "GET", strict).status, 200);
  EXPECT_EQ(http_call(port, "GET", "/health/ready?strict=maybe").status, 400);
  expect_gauge(port, 1);

  // PostgreSQL lost: the buffer acknowledges pushes, so the instance stays in the balancer.
  // The route registry's follower and the database pool's check go with it (neither decides
  // the code).
  pg.cut();
  auto down = ready_until(port, is(200, "degraded", {"postgres", "database", "registry"}));
  EXPECT_NE(down.body.find("unreachable"), std::string::npos) << down.body;
  EXPECT_TRUE(down.json()["checks"]["buffer"]["ok"].get<bool>()) << down.body;
  const auto strict_down = http_call(port, "GET", strict);
  EXPECT_EQ(strict_down.status, 503);
  EXPECT_EQ(strict_down.json()["status"], "degraded") << strict_down.body;
  expect_gauge(port, 0.5);
  const auto pushed =
      http_call(port, "POST", "/api/v1/push", R"({"items":[{"queue":"ready","payload":{"n":1}}]})");
  ASSERT_EQ(pushed.status, 201) << pushed.body;
  EXPECT_EQ(pushed.json()["items"][0]["status"], "buffered");
  EXPECT_EQ(http_call(port, "GET", "/health/live").status, 200) << "alive regardless";
  pg.restore();
  ready_until(port, is(200, "ready"));
  expect_gauge(port, 1);

  mq.cut();
  ready_until(port, is(200, "degraded", {"rabbitmq"}));
  EXPECT_EQ(http_call(port, "GET", strict).status, 503);
  expect_gauge(port, 0.5);
  mq.restore();
  ready_until(port, is(200, "ready"), 30s);  // the relay reconnects with backoff

  // A buffer directory that disappears (an unmounted volume, a cleanup job) would lose what
  // sluice writes there next; PostgreSQL still takes the pushes.
  const auto moved = buffer.path() + "-moved";
  std::filesystem::rename(buffer.path(), moved);
  down = ready_until(port, is(200, "degraded", {"buffer"}));
  EXPECT_NE(down.body.find("is not writable: No such file or directory"), std::string::npos)
      << down.body;
  expect_gauge(port, 0.5);

  // And with PostgreSQL gone as well, no push can be acknowledged: out of the balancer.
  pg.cut();
  ready_until(port, is(503, "not_ready", {"buffer", "postgres", "database", "registry"}));
  EXPECT_EQ(http_call(port, "GET", strict).status, 503);
  expect_gauge(port, 0);

  std::filesystem::rename(moved, buffer.path());
  pg.restore();
  ready_until(port, is(200, "ready"));
  ready_until(port, is(200, "ready"), 20s, strict);
  expect_gauge(port, 1);
}

}  // namespace
}  // namespace sluice::test
