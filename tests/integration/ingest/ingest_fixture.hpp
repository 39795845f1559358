#pragma once

// What the ingest tests against the real binary share: a database and a buffer directory of
// their own, the environment for sluice, streamed uploads, and peak memory of the process.
#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "sluice/ingest/upload_client.hpp"

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::test {

class ingest_fixture : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir buffer_;

  sluice_process::env_map env(sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("FILE_BUFFER_DIR", buffer_.path());
    return extra;
  }

  // Waits until the schema exists and pushes go straight to PostgreSQL.
  static void wait_ready(const sluice_process& s) {
    using namespace std::chrono_literals;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (http_call(s.port(), "GET", "/health/ready").status == 200) {
        const auto st = http_call(s.port(), "GET", "/api/v1/status/buffers").json();
        if (st["schemaReady"].get<bool>() && !st["failoverActive"].get<bool>())
          return;
      }
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "sluice did not become ready:\n" << s.log();
  }

  std::string count(const std::string& where = "true") {
    pg_session pg(db_.url());
    return pg.scalar("SELECT count(*) FROM sluice_messages WHERE " + where);
  }

  static http_result upload(const sluice_process& s, const std::string& target,
                            const std::string& content_type, const std::string& body,
                            std::map<std::string, std::string> headers = {}) {
    headers["Content-Type"] = content_type;
    return http_call(s.port(), "POST", target, body, headers);
  }

  // A chunked upload whose body `next` writes piece by piece (an empty piece ends it).
  static ingest::upload_response stream(
      const sluice_process& s, const std::string& target, const std::string& content_type,
      const ingest::body_source& next,
      std::vector<std::pair<std::string, std::string>> headers = {}) {
    ingest::upload_target to;
    to.host = "127.0.0.1";
    to.port = s.port();
    to.target = target;
    to.headers = std::move(headers);
    to.headers.emplace_back("Content-Type", content_type);
    return ingest::post_chunked(to, next);
  }

  // A field of /proc/<pid>/status in KiB (VmHWM: the peak resident set; VmRSS: the current).
  static long status_kb(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(field + ":", 0) == 0)
        return std::stol(line.substr(field.size() + 1));
    }
    return -1;
  }
};

}  // namespace sluice::test
