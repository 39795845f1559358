#include "sluice_test/pg.hpp"

#include <atomic>
#include <stdexcept>
#include <unistd.h>

#include <libpq-fe.h>

#include "sluice_test/env.hpp"

namespace sluice::test {

pg_session::pg_session(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
  if (PQstatus(static_cast<PGconn*>(conn_)) != CONNECTION_OK) {
    const std::string error = PQerrorMessage(static_cast<PGconn*>(conn_));
    PQfinish(static_cast<PGconn*>(conn_));
    throw std::runtime_error("cannot connect to " + url + ": " + error);
  }
}

pg_session::~pg_session() {
  PQfinish(static_cast<PGconn*>(conn_));
}

std::vector<pg_session::row> pg_session::query(const std::string& sql) {
  PGresult* res = PQexec(static_cast<PGconn*>(conn_), sql.c_str());
  const auto status = PQresultStatus(res);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    const std::string error = PQresultErrorMessage(res);
    PQclear(res);
    throw std::runtime_error("query failed: " + sql + ": " + error);
  }
  std::vector<row> rows;
  for (int r = 0; r < PQntuples(res); ++r) {
    row out;
    for (int c = 0; c < PQnfields(res); ++c) {
      if (PQgetisnull(res, r, c)) {
        out.emplace_back(std::nullopt);
      } else {
        out.emplace_back(
            std::string(PQgetvalue(res, r, c), static_cast<std::size_t>(PQgetlength(res, r, c))));
      }
    }
    rows.push_back(std::move(out));
  }
  PQclear(res);
  return rows;
}

std::string pg_session::scalar(const std::string& sql) {
  const auto rows = query(sql);
  if (rows.empty() || rows[0].empty() || !rows[0][0])
    throw std::runtime_error("no value from: " + sql);
  return *rows[0][0];
}

namespace {
std::string with_database(const std::string& url, const std::string& db) {
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const auto query = url.find('?');
  const std::string base = slash == std::string::npos ? url.substr(0, query) : url.substr(0, slash);
  return base + "/" + db + (query == std::string::npos ? "" : url.substr(query));
}
}  // namespace

scoped_database::scoped_database() : admin_url_(require_env("SLUICE_TEST_PG_URL")) {
  static std::atomic<int> counter{0};
  name_ = "sluice_t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  url_ = with_database(admin_url_, name_);
  pg_session admin(admin_url_);
  admin.query("DROP DATABASE IF EXISTS " + name_);
  admin.query("CREATE DATABASE " + name_);
}

scoped_database::~scoped_database() {
  try {
    pg_session admin(admin_url_);
    admin.query("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // PostgreSQL may be stopped by the test; the throwaway cluster is removed by tests/run anyway.
  }
}

}  // namespace sluice::test
