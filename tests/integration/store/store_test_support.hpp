#pragma once

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <libpq-fe.h>

// ASSERT_* leaves the function with `return`, which a coroutine cannot: record the failure and
// co_return instead (coroutines returning awaitable<void> only).
#define CO_ASSERT_TRUE(c)                             \
  if (!(c)) {                                         \
    ADD_FAILURE() << "CO_ASSERT_TRUE(" #c ") failed"; \
    co_return;                                        \
  } else                                              \
    (void)0
#define CO_ASSERT_EQ(a, b)                                                             \
  if (!((a) == (b))) {                                                                 \
    ADD_FAILURE() << #a " == " #b " failed: " << ::testing::PrintToString(a) << " vs " \
                  << ::testing::PrintToString(b);                                      \
    co_return;                                                                         \
  } else                                                                               \
    (void)0

// Helpers for the store's integration tests: a scratch database per test fixture, blocking
// SQL for setup and checks (libpq's synchronous API is fine outside the code under test), and
// running a coroutine to completion.
namespace sluice::store::test {

using rows = std::vector<std::vector<std::optional<std::string>>>;

inline std::string required_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value)
    throw std::runtime_error(std::string(name) + " is not set");
  return value;
}

inline std::string quote_conninfo_value(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "'";
}

// `conninfo` (keyword/value or URI) with some keywords replaced, as a keyword/value string.
inline std::string with_options(const std::string& conninfo,
                                const std::map<std::string, std::string>& overrides) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (!options) {
    std::string why = error ? error : "parse error";
    PQfreemem(error);
    throw std::runtime_error("bad conninfo: " + why);
  }
  std::string out;
  for (auto* o = options; o->keyword; ++o) {
    if (overrides.contains(o->keyword) || !o->val)
      continue;
    out += std::string(o->keyword) + "=" + quote_conninfo_value(o->val) + " ";
  }
  PQconninfoFree(options);
  for (const auto& [key, value] : overrides)
    out += key + "=" + quote_conninfo_value(value) + " ";
  return out;
}

class blocking_connection {
 public:
  explicit blocking_connection(const std::string& conninfo)
      : conn_(PQconnectdb(conninfo.c_str()), &PQfinish) {
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      throw std::runtime_error(std::string("connect: ") + PQerrorMessage(conn_.get()));
    }
  }

  rows query(const std::string& sql) const {
    std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn_.get(), sql.c_str()), &PQclear);
    const auto status = PQresultStatus(res.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      throw std::runtime_error(sql + ": " + PQresultErrorMessage(res.get()));
    }
    rows out(static_cast<std::size_t>(PQntuples(res.get())));
    for (int r = 0; r < PQntuples(res.get()); ++r) {
      for (int c = 0; c < PQnfields(res.get()); ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          out[r].emplace_back(std::nullopt);
        } else {
          out[r].emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                          static_cast<std::size_t>(PQgetlength(res.get(), r, c))));
        }
      }
    }
    return out;
  }

  std::string scalar(const std::string& sql) const {
    const rows r = query(sql);
    if (r.empty() || r[0].empty() || !r[0][0])
      throw std::runtime_error(sql + ": no value");
    return *r[0][0];
  }

 private:
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
};

// A database of its own for one test fixture, dropped at the end, so test runs never see
// each other's tables.
class scratch_database {
 public:
  explicit scratch_database(std::string server_conninfo)
      : server_conninfo_(std::move(server_conninfo)) {
    static std::atomic<int> counter{0};
    name_ = "sluice_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(std::random_device{}() % 100000);
    blocking_connection(server_conninfo_).query("CREATE DATABASE " + name_);
    conninfo_ = with_options(server_conninfo_, {{"dbname", name_}});
  }

  scratch_database() : scratch_database(required_env("SLUICE_TEST_PG_URL")) {}

  ~scratch_database() {
    try {
      blocking_connection(server_conninfo_)
          .query("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
      // The server may be gone (chaos tests); nothing else to clean up then.
    }
  }

  scratch_database(const scratch_database&) = delete;
  scratch_database& operator=(const scratch_database&) = delete;

  const std::string& conninfo() const { return conninfo_; }
  const std::string& name() const { return name_; }
  rows query(const std::string& sql) const { return blocking_connection(conninfo_).query(sql); }
  std::string scalar(const std::string& sql) const {
    return blocking_connection(conninfo_).scalar(sql);
  }

 private:
  std::string server_conninfo_;
  std::string name_;
  std::string conninfo_;
};

inline std::chrono::steady_clock::time_point in(std::chrono::milliseconds ms) {
  return std::chrono::steady_clock::now() + ms;
}

template <typename T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e)
      result.emplace(std::move(value));
  });
  io.restart();
  io.run();
  if (error)
    std::rethrow_exception(error);
  return std::move(*result);
}

inline void run(boost::asio::io_context& io, boost::asio::awaitable<void> task) {
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e) { error = e; });
  io.restart();
  io.run();
  if (error)
    std::rethrow_exception(error);
}

}  // namespace sluice::store::test
