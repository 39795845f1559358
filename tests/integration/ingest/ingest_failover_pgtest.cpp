// PostgreSQL goes away in the middle of a streamed upload (the TCP proxy in front of it is
// cut): the rows still arriving go to the file buffer, the answer is still 200 with every row
// durable, and once PostgreSQL is back the buffer drains into it with each row stored once.
#include <gtest/gtest.h>

#include "ingest_fixture.hpp"
#include "sluice_test/tcp_proxy.hpp"

namespace sluice::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class ingest_failover : public ingest_fixture {
 protected:
  tcp_proxy proxy_{"127.0.0.1", url_port(require_env("SLUICE_TEST_PG_URL"))};

  sluice_process::env_map failover_env() {
    return env({{"DATABASE_URL", url_with_port(db_.url(), proxy_.port())},
                {"FILE_BUFFER_FSYNC", "always"},
                {"DB_CONNECT_TIMEOUT_MS", "1000"},
                {"DB_STATEMENT_TIMEOUT_MS", "2000"}});
  }

  static json status(const sluice_process& s) {
    return http_call(s.port(), "GET", "/api/v1/status/buffers").json();
  }
};

TEST_F(ingest_failover, rows_go_to_the_file_buffer_while_postgres_is_down) {
  sluice_process s(failover_env());
  wait_ready(s);
  constexpr int total = 60'000;
  constexpr int cut_at = 20'000;
  int next = 0;
  bool cut = false;
  const auto res = stream(s, "/api/v1/queues/fo/ingest", "application/x-ndjson",
                          [&](std::string& out, std::size_t) {
                            if (next >= cut_at && !cut) {
                              // Wait until some rows are in PostgreSQL, so the cut falls
                              // mid-upload.
                              const auto deadline = std::chrono::steady_clock::now() + 30s;
                              while (std::stoi(count("queue = 'fo'")) == 0 &&
                                     std::chrono::steady_clock::now() < deadline)
                                std::this_thread::sleep_for(20ms);
                              proxy_.cut();
                              cut = true;
                            }
                            for (int i = 0; i < 500 && next < total; ++i, ++next)
                              out += "{\"n\":" + std::to_string(next) + ",\"pad\":\"" +
                                     std::string(100, 'p') + "\"}\n";
                          },
                          {{"Idempotency-Key", "fo-1"}});
  ASSERT_EQ(res.status, 200) << res.body << "\n" << s.log();
  const auto out = json::parse(res.body);
  EXPECT_EQ(out["accepted"], total);
  EXPECT_GT(out["buffered"].get<int>(), 0) << out.dump();
  EXPECT_LT(out["buffered"].get<int>(), total) << "the first rows went to PostgreSQL";
  EXPECT_TRUE(status(s)["failoverActive"].get<bool>());

  proxy_.restore();
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto st = status(s);
    if (st["pending"] == 0 && !st["failoverActive"].get<bool>())
      break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(count("queue = 'fo'"), std::to_string(total));
  pg_session pg(db_.url());
  EXPECT_EQ(
      pg.scalar("SELECT count(DISTINCT payload->>'n') FROM sluice_messages WHERE queue = 'fo'"),
      std::to_string(total));
}

}  // namespace
}  // namespace sluice::test
