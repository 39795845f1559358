#pragma once

// What the push tests against the real binary share: a database and a buffer directory of
// their own, the environment for sluice, and waits on PostgreSQL's contents.
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::test {

class push_fixture : public ::testing::Test {
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

  // Polls `done` until it holds or `within` passes.
  static bool eventually(const std::function<bool()>& done, std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done())
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  }

  // Polls PostgreSQL until `where` matches `n` rows or `within` passes.
  bool wait_count(const std::string& where, const std::string& n,
                  std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (count(where) == n)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return count(where) == n;
  }
};

}  // namespace sluice::test
