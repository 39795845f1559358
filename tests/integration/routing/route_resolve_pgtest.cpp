// The resolve side of the route registry through the real binary on a real PostgreSQL:
// 1,000 concurrent resolves of a cold key cost one query (counted from PostgreSQL's own
// statement log, not from sluice's counters); a change on one instance is seen by another's
// resolve within a second; an instance cut off from PostgreSQL (behind a TCP proxy the test
// cuts, so the shared server keeps running for the other tests) catches up by version once it
// is back; while PostgreSQL is away cached routes resolve stale within the bound and new keys
// answer 503.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/eventually.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

const std::map<std::string, std::string> json_type{{"Content-Type", "application/json"}};

double metric(std::uint16_t port, const std::string& series) {
  const std::string text = http_call(port, "GET", "/metrics").body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

// A tenant no other test (nor an earlier run) uses: the statement log is the server's.
std::string unique_tenant() {
  std::random_device rd;
  return "t" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1'000'000);
}

std::string key_query(const std::string& tenant, const std::string& service,
                      const std::string& version = "v1") {
  return "tenant=" + tenant + "&service=" + service + "&env=prod&version=" + version;
}

std::string key_body(const std::string& tenant, const std::string& service,
                     const std::string& url = {}) {
  json j = {{"tenant", tenant}, {"service", service}, {"env", "prod"}, {"version", "v1"}};
  if (!url.empty())
    j["url"] = url;
  return j.dump();
}

http_result resolve(std::uint16_t port, const std::string& tenant, const std::string& service) {
  return http_call(port, "GET", "/api/v1/routes/resolve?" + key_query(tenant, service));
}

std::string url_of(const http_result& r) {
  return r.status == 200 ? r.json().value("url", "") : "";
}

// Lookups of `tenant` PostgreSQL executed, from its statement log (log_statement = all for the
// test's database): each "execute sluice_routes_lookup" whose parameters name the tenant.
class statement_log {
 public:
  statement_log()
      : path_(std::filesystem::path(require_env("SLUICE_TEST_PGDATA")).parent_path() /
              "postgres.log"),
        start_(std::filesystem::file_size(path_)) {}

  int lookups_of(const std::string& tenant) const {
    std::ifstream in(path_);
    in.seekg(static_cast<std::streamoff>(start_));
    std::map<std::string, std::string> last_execute;  // by backend pid
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      const auto open = line.find(" [");
      const auto close = line.find("] ", open == std::string::npos ? 0 : open);
      if (open == std::string::npos || close == std::string::npos)
        continue;
      const std::string pid = line.substr(open + 2, close - open - 2);
      if (const auto at = line.find("LOG:  execute "); at != std::string::npos) {
        const auto name_end = line.find(':', at + 14);
        last_execute[pid] = line.substr(at + 14, name_end - at - 14);
      } else if (line.find("DETAIL:  parameters: $1 = '" + tenant + "'") != std::string::npos &&
                 last_execute[pid] == "sluice_routes_lookup") {
        ++n;
      }
    }
    return n;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::uintmax_t start_;
};

class route_resolve_test : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir dir_;
  std::string tenant_ = unique_tenant();

  sluice_process::env_map env(sluice_process::env_map extra, const std::string& name) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("FILE_BUFFER_DIR", dir_.path() + "/buffer-" + name);
    return extra;
  }

  // The follower has caught up once and LISTENs.
  static void wait_following(std::uint16_t port) {
    ASSERT_TRUE(eventually(
        [&] {
          const auto ready = http_call(port, "GET", "/health/ready").json();
          return ready["checks"]["registry"]["connected"] == true;
        },
        20s))
        << http_call(port, "GET", "/health/ready").body;
  }

  http_result create(std::uint16_t port, const std::string& service, const std::string& url) {
    return http_call(port, "POST", "/api/v1/routes", key_body(tenant_, service, url), json_type);
  }
};

TEST_F(route_resolve_test, a_thousand_concurrent_resolves_of_a_cold_key_are_one_query) {
  {
    pg_session admin(db_.url());
    admin.query("ALTER DATABASE \"" + db_.name() + "\" SET log_statement = 'all'");
  }
  const statement_log log;
  sluice_process s(env({}, "a"));
  wait_following(s.port());
  ASSERT_EQ(create(s.port(), "orders", "http://orders.shop:8080/").status, 201);

  // The lookup waits for a lock the test holds, so that all 1,000 resolves arrive while it is
  // in flight (without it, the later ones would be cache hits and prove nothing).
  pg_session locker(db_.url());
  locker.query("BEGIN");
  locker.query("LOCK TABLE sluice_routes IN ACCESS EXCLUSIVE MODE");
  constexpr int n = 1000;
  const std::string request = "GET /api/v1/routes/resolve?" + key_query(tenant_, "orders") +
                              " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::vector<std::unique_ptr<raw_connection>> clients;
  clients.reserve(n);
  for (int i = 0; i < n; ++i) {
    clients.push_back(std::make_unique<raw_connection>(s.port()));
    clients.back()->send(request);
  }
  // 1,000 connections take seconds to arrive on a loaded 2-core machine.
  ASSERT_TRUE(eventually([&] { return metric(s.port(), "sluice_route_lookup_waiters") == n; }, 30s))
      << "waiters: " << metric(s.port(), "sluice_route_lookup_waiters");
  EXPECT_EQ(metric(s.port(), "sluice_route_lookups_in_flight"), 1);
  locker.query("COMMIT");

  int ok = 0;
  for (auto& c : clients) {
    const std::string reply = c->receive(10s);
    if (reply.rfind("HTTP/1.1 200", 0) == 0 &&
        reply.find(R"({"url":"http://orders.shop:8080/"})") != std::string::npos)
      ++ok;
  }
  EXPECT_EQ(ok, n);
  EXPECT_EQ(log.lookups_of(tenant_), 1) << "PostgreSQL's statement log " << log.path();
  EXPECT_EQ(metric(s.port(), "sluice_route_resolve_total{result=\"miss\"}"), n);
  EXPECT_EQ(metric(s.port(), "sluice_route_lookups_total{result=\"ok\"}"), 1);

  // Cached now: more resolves cost no query at all.
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(url_of(resolve(s.port(), tenant_, "orders")), "http://orders.shop:8080/");
  EXPECT_EQ(metric(s.port(), "sluice_route_resolve_total{result=\"hit\"}"), 20);
  EXPECT_EQ(log.lookups_of(tenant_), 1);
}

TEST_F(route_resolve_test, a_change_on_one_instance_reaches_the_other_s_resolve_within_a_second) {
  sluice_process a(env({}, "a"));
  sluice_process b(env({}, "b"));
  wait_following(a.port());
  wait_following(b.port());
  ASSERT_EQ(create(a.port(), "orders", "http://orders-1/").status, 201);
  ASSERT_EQ(url_of(resolve(b.port(), tenant_, "orders")), "http://orders-1/");
  ASSERT_EQ(resolve(b.port(), tenant_, "orders").status, 200);
  ASSERT_EQ(resolve(b.port(), tenant_, "billing").status, 404);  // cached as missing

  // Each change is made on A while B has the key cached for APP_POSITIVE_CACHE_TTL (60 s).
  ASSERT_EQ(http_call(a.port(), "PUT", "/api/v1/routes",
                      key_body(tenant_, "orders", "http://orders-2/"), json_type)
                .status,
            200);
  const auto updated = time_until(
      [&] { return url_of(resolve(b.port(), tenant_, "orders")) == "http://orders-2/"; }, 5s);
  ASSERT_TRUE(updated) << b.log();
  std::printf("update seen by the other instance after %lld ms\n",
              static_cast<long long>(updated->count()));
  EXPECT_LT(*updated, 1s);

  ASSERT_EQ(http_call(a.port(), "POST", "/api/v1/routes/deactivate", key_body(tenant_, "orders"),
                      json_type)
                .status,
            200);
  const auto deactivated =
      time_until([&] { return resolve(b.port(), tenant_, "orders").status == 404; }, 5s);
  ASSERT_TRUE(deactivated);
  std::printf("deactivation seen after %lld ms\n", static_cast<long long>(deactivated->count()));
  EXPECT_LT(*deactivated, 1s);
  const auto gone = resolve(b.port(), tenant_, "orders");
  EXPECT_EQ(gone.json()["error"]["code"], "route_not_found");

  // A key B holds as missing (APP_NEGATIVE_CACHE_TTL 10 s) is created on A.
  ASSERT_EQ(create(a.port(), "billing", "http://billing/").status, 201);
  const auto created = time_until(
      [&] { return url_of(resolve(b.port(), tenant_, "billing")) == "http://billing/"; }, 5s);
  ASSERT_TRUE(created);
  EXPECT_LT(*created, 1s);

  // Four changes: both instances have applied registry version 4.
  for (const auto port : {a.port(), b.port()}) {
    EXPECT_TRUE(eventually([&] { return metric(port, "sluice_route_registry_version") == 4; }, 2s))
        << metric(port, "sluice_route_registry_version");
  }
  EXPECT_GE(metric(b.port(), "sluice_route_invalidations_total"), 3);
}

TEST_F(route_resolve_test, an_instance_cut_off_from_postgresql_catches_up_by_version_on_reconnect) {
  tcp_proxy proxy("127.0.0.1", url_port(db_.url()));
  sluice_process a(env({}, "a"));
  sluice_process b(env({{"DATABASE_URL", url_with_port(db_.url(), proxy.port())}}, "b"));
  wait_following(a.port());
  wait_following(b.port());
  ASSERT_EQ(create(a.port(), "orders", "http://orders-1/").status, 201);
  ASSERT_EQ(create(a.port(), "billing", "http://billing-1/").status, 201);
  ASSERT_EQ(create(a.port(), "audit", "http://audit-1/").status, 201);
  for (const char* s : {"orders", "billing", "audit"})
    ASSERT_EQ(resolve(b.port(), tenant_, s).status, 200) << s;

  proxy.cut();
  ASSERT_TRUE(b.wait_for_log("LISTEN connection lost", 10s)) << b.log();
  ASSERT_TRUE(eventually(
      [&] {
        return http_call(b.port(), "GET", "/health/ready")
                   .json()["checks"]["registry"]["connected"] == false;
      },
      5s));
  // Changes B cannot hear of: no notification survives the cut.
  ASSERT_EQ(http_call(a.port(), "PUT", "/api/v1/routes",
                      key_body(tenant_, "orders", "http://orders-2/"), json_type)
                .status,
            200);
  ASSERT_EQ(http_call(a.port(), "POST", "/api/v1/routes/deactivate", key_body(tenant_, "billing"),
                      json_type)
                .status,
            200);
  ASSERT_EQ(http_call(a.port(), "DELETE", "/api/v1/routes?" + key_query(tenant_, "audit")).status,
            204);
  EXPECT_EQ(url_of(resolve(b.port(), tenant_, "orders")), "http://orders-1/")
      << "B still answers from its cache, within the TTL";

  proxy.restore();
  const auto caught_up = time_until(
      [&] {
        return url_of(resolve(b.port(), tenant_, "orders")) == "http://orders-2/" &&
               resolve(b.port(), tenant_, "billing").status == 404 &&
               resolve(b.port(), tenant_, "audit").status == 404;
      },
      15s);
  ASSERT_TRUE(caught_up) << b.log();
  std::printf("caught up %lld ms after PostgreSQL came back\n",
              static_cast<long long>(caught_up->count()));
  // Three creates and three changes: registry version 6 on both.
  for (const auto port : {a.port(), b.port()}) {
    EXPECT_TRUE(eventually([&] { return metric(port, "sluice_route_registry_version") == 6; }, 2s))
        << metric(port, "sluice_route_registry_version");
  }
  EXPECT_EQ(metric(b.port(), "sluice_route_cache_clears_total"), 1)
      << "three changes are replayed, not a cache clear (only the first sync clears)";
  const auto registry = http_call(b.port(), "GET", "/health/ready").json()["checks"]["registry"];
  EXPECT_EQ(registry["connected"], true);
  EXPECT_EQ(registry["applied_version"], 6);
}

TEST_F(route_resolve_test, postgresql_down_cached_routes_resolve_stale_and_new_keys_answer_503) {
  tcp_proxy proxy("127.0.0.1", url_port(db_.url()));
  sluice_process a(env({}, "a"));
  sluice_process b(env({{"DATABASE_URL", url_with_port(db_.url(), proxy.port())},
                        {"APP_POSITIVE_CACHE_TTL", "1"},
                        {"APP_NEGATIVE_CACHE_TTL", "60"},
                        {"ROUTE_STALE_MAX_SEC", "3"}},
                       "b"));
  wait_following(a.port());
  wait_following(b.port());
  ASSERT_EQ(create(a.port(), "orders", "http://orders-1/").status, 201);
  ASSERT_EQ(url_of(resolve(b.port(), tenant_, "orders")), "http://orders-1/");
  ASSERT_EQ(resolve(b.port(), tenant_, "missing").status, 404);

  proxy.cut();
  // Past the 1 s TTL the store is asked, fails, and the last known route answers.
  ASSERT_TRUE(eventually(
      [&] {
        EXPECT_EQ(url_of(resolve(b.port(), tenant_, "orders")), "http://orders-1/");
        return metric(b.port(), "sluice_route_resolve_total{result=\"stale\"}") >= 1;
      },
      5s))
      << b.log();

  const auto cold = resolve(b.port(), tenant_, "billing");
  EXPECT_EQ(cold.status, 503) << cold.body;
  EXPECT_EQ(cold.json()["error"]["code"], "route_registry_unavailable");
  EXPECT_FALSE(cold.header("retry-after").empty());
  EXPECT_EQ(resolve(b.port(), tenant_, "missing").status, 404)
      << "a known-missing key stays 404 from the negative cache";

  // Past TTL + ROUTE_STALE_MAX_SEC the route is no longer served.
  const auto expired =
      time_until([&] { return resolve(b.port(), tenant_, "orders").status == 503; }, 10s);
  ASSERT_TRUE(expired);
  EXPECT_GE(metric(b.port(), "sluice_route_resolve_total{result=\"unavailable\"}"), 2);

  proxy.restore();
  EXPECT_TRUE(eventually(
      [&] { return url_of(resolve(b.port(), tenant_, "orders")) == "http://orders-1/"; }, 15s));
}

}  // namespace
}  // namespace sluice::test
