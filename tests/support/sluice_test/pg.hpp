#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sluice::test {

// Blocking libpq for assertions in tests (the code under test uses its own async driver).
class pg_session {
 public:
  explicit pg_session(const std::string& url);
  ~pg_session();
  pg_session(const pg_session&) = delete;
  pg_session& operator=(const pg_session&) = delete;

  using row = std::vector<std::optional<std::string>>;
  std::vector<row> query(const std::string& sql);  // throws on error
  std::string scalar(const std::string& sql);      // first column of the first row

 private:
  void* conn_;
};

// A database of its own for one test, created from SLUICE_TEST_PG_URL and dropped afterwards,
// so tests running in parallel never see each other's rows.
class scoped_database {
 public:
  scoped_database();
  ~scoped_database();
  scoped_database(const scoped_database&) = delete;
  scoped_database& operator=(const scoped_database&) = delete;
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

}  // namespace sluice::test
