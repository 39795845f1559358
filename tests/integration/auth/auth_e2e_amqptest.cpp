// Authentication and authorization through the real binary: a tokens file, HS256 and RS256 (and
// ES256) JWTs and the static token against every endpoint family (the matrix below), the proxy
// keeping sluice's token from the target, the tokens file re-read on SIGHUP, and the token's name
// as the actor of audited changes. PostgreSQL and RabbitMQ (for the proxy) are the real ones.
#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "sluice/auth/base64url.hpp"
#include "sluice/auth/token_table.hpp"
#include "sluice/http/router.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "jwt_signer.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/loop_thread.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::auth::e2e {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using json = nlohmann::json;
using sluice::test::http_call;
using sluice::test::http_result;
using sluice::test::jwt_signer;
using sluice::test::sluice_process;
using clock = std::chrono::steady_clock;
using headers = std::map<std::string, std::string>;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto until = clock::now() + limit;
  while (clock::now() < until) {
    if (condition())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

std::string hex_sha(const std::string& token) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : sha256_of(token)) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path + ".tmp", std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  // Renamed into place, so a SIGHUP never reads half a file.
  ASSERT_EQ(std::rename((path + ".tmp").c_str(), path.c_str()), 0);
}

// Opaque tokens of the tokens file (their SHA-256 only is written there).
constexpr const char* reader_token = "rd-8d1f0c3e9b";
constexpr const char* writer_token = "wr-71aa52c0e4";
constexpr const char* admin_token = "ad-c39e55f2b7";
constexpr const char* scoped_token = "sc-0b6e2d9a41";  // admin, but only names tele-*
constexpr const char* static_token = "st-5f7d3a1c08";  // AUTH_TOKEN: every role
constexpr const char* hs_secret = "hs-secret-4b1e9d-of-32-bytes-or-more";

json token_entry(const std::string& name, const std::string& token, std::vector<std::string> roles,
                 std::vector<std::string> prefixes = {}) {
  json e = {{"name", name}, {"sha256", hex_sha(token)}, {"roles", roles}};
  if (!prefixes.empty())
    e["prefixes"] = prefixes;
  return e;
}

std::string tokens_file_text() {
  return json{{"tokens",
               {token_entry("reader", reader_token, {"read"}),
                token_entry("writer", writer_token, {"write"}),
                token_entry("ops-admin", admin_token, {"admin"}),
                token_entry("tele-ops", scoped_token, {"admin"}, {"tele-"})}}}
      .dump(2);
}

// One endpoint of a family: what it needs, and a request that reaches the handler when allowed
// (the answer then may be 2xx, 400, 404, 409 or 503: anything but 401 and 403).
struct endpoint {
  std::string family;
  std::string method;
  std::string target;
  std::string body;
  http::access required;
};

const char* no_id = "0190b9a4-6f8e-7c3a-9d2b-5e4f3a2b1c0d";

// Every endpoint family of the API. A route added later belongs here too.
std::vector<endpoint> endpoints() {
  using http::access;
  const std::string id = no_id;
  return {
      {"probes", "GET", "/health", "", access::open},
      {"probes", "GET", "/health/live", "", access::open},
      {"probes", "GET", "/health/ready", "", access::open},
      {"probes", "GET", "/healthz", "", access::open},
      {"probes", "GET", "/ready", "", access::open},
      {"metrics", "GET", "/metrics", "", access::open},
      {"push", "POST", "/api/v1/push", R"({"items":[{"queue":"tele-m","payload":{"n":1}}]})",
       access::write},
      {"async requests", "GET", "/api/v1/requests/" + id, "", access::write},
      {"proxy", "GET", "/proxy/tele-nosuch/x", "", access::write},
      {"proxy", "POST", "/proxy/tele-nosuch/x", "{}", access::write},
      {"queues", "GET", "/api/v1/queues/tele-m", "", access::read},
      {"queue settings", "PUT", "/api/v1/queues/tele-m", R"({"mode":"nonsense"})", access::admin},
      {"buffers", "GET", "/api/v1/status/buffers", "", access::read},
      {"retry-failed", "POST", "/api/v1/status/buffers/retry-failed?queue=tele-m&limit=0", "",
       access::admin},
      {"routes", "GET", "/api/v1/routes?service=tele-r", "", access::read},
      {"routes", "GET", "/api/v1/routes/events?service=tele-r", "", access::read},
      {"routes", "GET", "/api/v1/routes/resolve?tenant=t&service=tele-r&env=prod&version=v1", "",
       access::read},
      {"route changes", "POST", "/api/v1/routes", "{}", access::admin},
      {"route changes", "PUT", "/api/v1/routes", "{}", access::admin},
      {"route changes", "POST", "/api/v1/routes/activate", "{}", access::admin},
      {"route changes", "POST", "/api/v1/routes/deactivate", "{}", access::admin},
      {"route changes", "DELETE", "/api/v1/routes?tenant=t&service=tele-r&env=prod&version=v9", "",
       access::admin},
      {"services", "GET", "/api/v1/services", "", access::read},
      {"services", "GET", "/api/v1/services/tele-s", "", access::read},
      {"services", "GET", "/api/v1/services/tele-s/schedule", "", access::read},
      {"service changes", "PUT", "/api/v1/services/tele-s", "{}", access::admin},
      {"service changes", "DELETE", "/api/v1/services/tele-nosuch", "", access::admin},
      {"schedules", "PUT", "/api/v1/services/tele-s/schedule", "{}", access::admin},
      {"schedules", "DELETE", "/api/v1/services/tele-s/schedule", "", access::admin},
      {"subscriptions", "GET", "/api/v1/queues/tele-m/subscriptions", "", access::read},
      {"subscriptions", "GET", "/api/v1/queues/tele-m/subscriptions/s1", "", access::read},
      {"subscription changes", "PUT", "/api/v1/queues/tele-m/subscriptions/s1", "{}",
       access::admin},
      {"subscription changes", "DELETE", "/api/v1/queues/tele-m/subscriptions/s1", "",
       access::admin},
      {"subscription changes", "POST", "/api/v1/queues/tele-m/subscriptions/s1/resume", "",
       access::admin},
      {"dlq", "GET", "/api/v1/dlq?queue=tele-m", "", access::read},
      {"dlq", "GET", "/api/v1/dlq/" + id + "?queue=tele-m", "", access::read},
      {"dlq", "GET", "/api/v1/dlq/jobs/" + id, "", access::read},
      {"dlq", "GET", "/api/v1/messages/" + id + "/deliveries", "", access::read},
      {"re-drives", "POST", "/api/v1/dlq/" + id + "/retry?queue=tele-m", "", access::admin},
      {"re-drives", "DELETE", "/api/v1/dlq/" + id + "?queue=tele-m", "", access::admin},
      {"re-drives", "POST", "/api/v1/dlq/retry", R"({"queue":"tele-m","dryRun":true})",
       access::admin},
  };
}

// {"alg":"none"} with an empty signature: what an attacker sends hoping the check is skipped.
std::string unsigned_jwt(const json& claims) {
  return base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + base64url_encode(claims.dump()) +
         ".";
}

struct credential {
  std::string label;
  std::string token;
  http::access role;  // the highest it has
};

bool allows(http::access role, http::access required) {
  http::caller c;
  c.read = role == http::access::read;
  c.write = role == http::access::write;
  c.admin = role == http::access::admin;
  return c.may(required);
}

headers with_token(const endpoint& e, const std::string& token) {
  headers h{{"Content-Type", "application/json"}};
  if (!token.empty())
    h[e.target.starts_with("/proxy/") ? "Proxy-Authorization" : "Authorization"] =
        "Bearer " + token;
  return h;
}

std::string describe(const endpoint& e, const std::string& who) {
  return e.family + ": " + e.method + " " + e.target + " as " + who;
}

// A target service for the proxy: records the headers of what it got.
class target_server {
 public:
  explicit target_server(test::loop_thread& loop) : loop_(loop) {
    const http::handler h = [this](http::request& req) -> asio::awaitable<http::response> {
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(req);
      }
      co_return http::response::text(200, "text/plain", "target");
    };
    for (const char* m : {"GET", "POST"})
      routes_.add(m, "/{rest*}", "any", h);
    http::server_options o;
    o.name = "target";
    server_ = std::make_unique<http::server>(loop_.io().get_executor(), o, routes_, metrics_);
    port_ = server_->listen("127.0.0.1", 0);
    server_->start();
  }
  ~target_server() {
    loop_.run([](http::server& s) -> asio::awaitable<void> {
      co_await s.shutdown(std::chrono::milliseconds(0));
    }(*server_));
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<http::request> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  test::loop_thread& loop_;
  metrics::registry metrics_;
  http::router routes_;
  std::unique_ptr<http::server> server_;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::vector<http::request> seen_;
};

class auth_e2e : public ::testing::Test {
 protected:
  sluice::test::scoped_database db_;
  sluice::test::temp_dir dir_;
  std::string tokens_path_ = dir_.path() + "/tokens.json";
  std::string key_path_ = dir_.path() + "/jwt-public.pem";
  jwt_signer hs_{jwt_signer::kind::hs256, hs_secret};
  jwt_signer rs_{jwt_signer::kind::rs256};

  void SetUp() override {
    write_file(tokens_path_, tokens_file_text());
    write_file(key_path_, rs_.public_key_pem());
  }

  sluice_process::env_map env(sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("RABBITMQ_URL", sluice::test::require_env("SLUICE_TEST_AMQP_URL"));
    extra.try_emplace("FILE_BUFFER_DIR", dir_.path() + "/buffer");
    extra.try_emplace("SLUICE_ROLES", "ingress,workers");
    extra.try_emplace("LOG_LEVEL", "info");
    extra.try_emplace("AUTH_TOKEN", static_token);
    extra.try_emplace("AUTH_TOKENS_FILE", tokens_path_);
    extra.try_emplace("AUTH_JWT_HS256_SECRET", hs_secret);
    extra.try_emplace("AUTH_JWT_PUBLIC_KEY_FILE", key_path_);
    return extra;
  }

  std::string jwt(const jwt_signer& s, const std::string& sub, const std::string& role,
                  std::int64_t exp_in = 300) const {
    return s.sign({{"sub", sub}, {"roles", {role}}, {"exp", unix_now() + exp_in}});
  }

  // Waits until PostgreSQL is migrated (the API answers 200 rather than 503).
  static void wait_ready(const sluice_process& s, const std::string& token) {
    ASSERT_TRUE(eventually(
        [&] {
          return http_call(s.port(), "GET", "/api/v1/routes", "",
                           {{"Authorization", "Bearer " + token}})
                     .status == 200;
        },
        30s))
        << s.log();
  }
};

TEST_F(auth_e2e, every_role_against_every_endpoint_family) {
  sluice_process s(env());
  wait_ready(s, admin_token);
  const std::vector<credential> credentials = {
      {"tokens file reader", reader_token, http::access::read},
      {"tokens file writer", writer_token, http::access::write},
      {"tokens file admin", admin_token, http::access::admin},
      {"AUTH_TOKEN", static_token, http::access::admin},
      {"HS256 reader", jwt(hs_, "jwt-reader", "read"), http::access::read},
      {"HS256 writer", jwt(hs_, "jwt-writer", "write"), http::access::write},
      {"HS256 admin", jwt(hs_, "jwt-admin", "admin"), http::access::admin},
      {"RS256 reader", jwt(rs_, "rs-reader", "read"), http::access::read},
      {"RS256 writer", jwt(rs_, "rs-writer", "write"), http::access::write},
      {"RS256 admin", jwt(rs_, "rs-admin", "admin"), http::access::admin},
      {"tokens file admin limited to tele-", scoped_token, http::access::admin},
  };
  // Refused with 401 whatever the route needs.
  jwt_signer stranger(jwt_signer::kind::rs256);
  const std::vector<std::pair<std::string, std::string>> bad_tokens = {
      {"wrong opaque token", "not-a-known-token"},
      {"expired HS256", jwt(hs_, "late", "admin", -120)},
      {"expired RS256", jwt(rs_, "late", "admin", -120)},
      {"RS256 of another key", jwt(stranger, "forger", "admin")},
      {"alg none", unsigned_jwt({{"sub", "x"}, {"roles", {"admin"}}, {"exp", unix_now() + 300}})},
  };

  int checked = 0;
  for (const auto& e : endpoints()) {
    const auto missing = http_call(s.port(), e.method, e.target, e.body, with_token(e, ""));
    if (e.required == http::access::open) {
      EXPECT_NE(missing.status, 401) << describe(e, "nobody");
      EXPECT_NE(missing.status, 403) << describe(e, "nobody");
      ++checked;
      continue;
    }
    EXPECT_EQ(missing.status, 401) << describe(e, "nobody") << "\n" << missing.body;
    EXPECT_EQ(missing.header("www-authenticate"), R"(Bearer realm="sluice")")
        << describe(e, "nobody");
    EXPECT_NE(missing.body.find(R"("code":"unauthorized")"), std::string::npos) << missing.body;
    for (const auto& [label, token] : bad_tokens) {
      const auto r = http_call(s.port(), e.method, e.target, e.body, with_token(e, token));
      EXPECT_EQ(r.status, 401) << describe(e, label) << "\n" << r.body;
      EXPECT_EQ(r.header("www-authenticate"), R"(Bearer realm="sluice", error="invalid_token")")
          << describe(e, label);
    }
    for (const auto& c : credentials) {
      const auto r = http_call(s.port(), e.method, e.target, e.body, with_token(e, c.token));
      if (allows(c.role, e.required)) {
        EXPECT_NE(r.status, 401) << describe(e, c.label) << "\n" << r.body;
        EXPECT_NE(r.status, 403) << describe(e, c.label) << "\n" << r.body;
      } else {
        EXPECT_EQ(r.status, 403) << describe(e, c.label) << "\n" << r.body;
        EXPECT_NE(r.body.find(R"("code":"forbidden")"), std::string::npos) << r.body;
      }
      ++checked;
    }
  }
  std::printf("[auth matrix] %d role x endpoint checks over %zu endpoints\n", checked,
              endpoints().size());

  // /api's Authorization is not read on /proxy, and Proxy-Authorization not on /api.
  EXPECT_EQ(http_call(s.port(), "GET", "/proxy/tele-nosuch/x", "",
                      {{"Authorization", std::string("Bearer ") + admin_token}})
                .status,
            401);
  EXPECT_EQ(http_call(s.port(), "GET", "/api/v1/routes", "",
                      {{"Proxy-Authorization", std::string("Bearer ") + admin_token}})
                .status,
            401);

  // Tokens are never logged.
  const auto log = s.log();
  for (const char* t : {reader_token, writer_token, admin_token, scoped_token, static_token})
    EXPECT_EQ(log.find(t), std::string::npos) << t;
}

TEST_F(auth_e2e, prefixes_limit_the_names_and_a_mixed_push_stores_nothing) {
  sluice_process s(env());
  wait_ready(s, admin_token);
  const headers h = {{"Content-Type", "application/json"},
                     {"Authorization", std::string("Bearer ") + scoped_token}};
  // Names in the path.
  EXPECT_NE(http_call(s.port(), "GET", "/api/v1/queues/tele-a", "", h).status, 403);
  EXPECT_EQ(http_call(s.port(), "GET", "/api/v1/queues/billing", "", h).status, 403);
  EXPECT_EQ(http_call(s.port(), "PUT", "/api/v1/services/billing", "{}", h).status, 403);
  EXPECT_EQ(http_call(s.port(), "GET", "/api/v1/queues/billing/subscriptions", "", h).status, 403);
  // Names in the query or the body.
  EXPECT_EQ(http_call(s.port(), "GET", "/api/v1/dlq", "", h).status, 403);
  EXPECT_EQ(http_call(s.port(), "GET", "/api/v1/dlq?queue=billing", "", h).status, 403);
  EXPECT_EQ(http_call(s.port(), "GET", "/api/v1/dlq?queue=tele-a", "", h).status, 200);
  EXPECT_EQ(http_call(s.port(), "POST", "/api/v1/dlq/retry", R"({"dryRun":true})", h).status, 403);
  EXPECT_EQ(
      http_call(s.port(), "POST", "/api/v1/status/buffers/retry-failed?limit=0", "", h).status,
      403);
  EXPECT_EQ(http_call(s.port(), "GET",
                      "/api/v1/routes/resolve?tenant=t&service=billing&env=prod&version=v1", "", h)
                .status,
            403);
  EXPECT_EQ(
      http_call(
          s.port(), "POST", "/api/v1/routes",
          R"({"tenant":"t","service":"billing","env":"prod","version":"v1","url":"http://x"})", h)
          .status,
      403);

  // A batch with one queue the token does not cover is refused whole.
  const auto mixed = http_call(
      s.port(), "POST", "/api/v1/push",
      R"({"items":[{"queue":"tele-mixed","payload":{"n":1}},{"queue":"billing","payload":{"n":2}}]})",
      h);
  EXPECT_EQ(mixed.status, 403) << mixed.body;
  EXPECT_NE(mixed.body.find("billing"), std::string::npos) << mixed.body;
  const auto ok = http_call(s.port(), "POST", "/api/v1/push",
                            R"({"items":[{"queue":"tele-ok","payload":{"n":3}}]})", h);
  ASSERT_EQ(ok.status, 201) << ok.body;
  sluice::test::pg_session pg(db_.url());
  ASSERT_TRUE(eventually(
      [&] {
        return pg.scalar("SELECT count(*) FROM sluice_messages WHERE queue = 'tele-ok'") == "1";
      },
      20s));
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM sluice_messages WHERE queue IN "
                      "('tele-mixed', 'billing')"),
            "0");
}

TEST_F(auth_e2e, metrics_auth_closes_metrics_but_not_the_probes) {
  sluice_process s(env({{"METRICS_AUTH", "1"}}));
  EXPECT_EQ(http_call(s.port(), "GET", "/metrics").status, 401);
  EXPECT_EQ(http_call(s.port(), "GET", "/metrics", "",
                      {{"Authorization", std::string("Bearer ") + writer_token}})
                .status,
            403);
  const auto r = http_call(s.port(), "GET", "/metrics", "",
                           {{"Authorization", std::string("Bearer ") + reader_token}});
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("sluice_auth_refusals_total{reason=\"missing_token\"} 1"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(http_call(s.port(), "GET", "/healthz").status, 200);
}

TEST_F(auth_e2e, proxy_authorization_never_reaches_the_target) {
  test::loop_thread loop;
  target_server target(loop);
  sluice_process s(env());
  wait_ready(s, admin_token);
  const std::string service = "tele-px-" + std::to_string(::getpid());
  const auto put = http_call(
      s.port(), "PUT", "/api/v1/services/" + service,
      json{{"defaultFlavour", "std"}, {"flavours", {{{"name", "std"}, {"url", target.url()}}}}}
          .dump(),
      {{"Content-Type", "application/json"},
       {"Authorization", std::string("Bearer ") + admin_token}});
  ASSERT_TRUE(put.status == 201 || put.status == 200) << put.status << " " << put.body;
  ASSERT_TRUE(s.wait_for_log("worker: consuming queue=default." + service + ".std ", 20s))
      << s.log();
  ASSERT_TRUE(s.wait_for_log("proxy: consuming replies", 20s)) << s.log();

  // Only the target's own credentials: refused before anything is forwarded.
  const auto refused = http_call(s.port(), "GET", "/proxy/" + service + "/x", "",
                                 {{"Authorization", "Bearer the-targets-own"}});
  EXPECT_EQ(refused.status, 401);
  EXPECT_TRUE(target.seen().empty());

  http_result r;
  ASSERT_TRUE(eventually(
      [&] {
        r = http_call(s.port(), "GET", "/proxy/" + service + "/x", "",
                      {{"Authorization", "Bearer the-targets-own"},
                       {"Proxy-Authorization", std::string("Bearer ") + writer_token}});
        return r.status == 200;
      },
      20s))
      << r.status << " " << r.body;
  EXPECT_EQ(r.body, "target");
  const auto seen = target.seen();
  ASSERT_FALSE(seen.empty());
  for (const auto& req : seen) {
    EXPECT_EQ(req.header("Authorization").value_or(""), "Bearer the-targets-own");
    EXPECT_FALSE(req.header("Proxy-Authorization")) << *req.header("Proxy-Authorization");
  }

  // A reader may not call through the proxy; a token limited to other names neither.
  EXPECT_EQ(http_call(s.port(), "GET", "/proxy/" + service + "/x", "",
                      {{"Proxy-Authorization", std::string("Bearer ") + reader_token}})
                .status,
            403);
}

TEST_F(auth_e2e, sighup_rereads_the_tokens_file_and_keeps_it_when_the_new_one_is_bad) {
  write_file(tokens_path_, json{{"tokens", {token_entry("first", "tok-first", {"read"})}}}.dump());
  sluice_process s(env());
  const auto status_with = [&](const std::string& token) {
    return http_call(s.port(), "GET", "/api/v1/status/buffers", "",
                     {{"Authorization", "Bearer " + token}})
        .status;
  };
  EXPECT_EQ(status_with("tok-first"), 200);
  EXPECT_EQ(status_with("tok-second"), 401);

  write_file(tokens_path_,
             json{{"tokens", {token_entry("second", "tok-second", {"read"})}}}.dump());
  ASSERT_EQ(::kill(s.pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return status_with("tok-second") == 200; }, 10s)) << s.log();
  EXPECT_EQ(status_with("tok-first"), 401);
  EXPECT_TRUE(s.wait_for_log("re-read: 1 tokens", 1s)) << s.log();

  write_file(tokens_path_, R"({"tokens":[{"name":"third","roles":["read"]}]})");
  ASSERT_EQ(::kill(s.pid(), SIGHUP), 0);
  ASSERT_TRUE(s.wait_for_log("tokens[0].sha256: missing", 10s)) << s.log();
  EXPECT_TRUE(s.wait_for_log("the 1 tokens read before stay in use", 1s)) << s.log();
  EXPECT_EQ(status_with("tok-second"), 200);
  EXPECT_TRUE(s.running());
}

TEST_F(auth_e2e, the_token_name_is_the_actor_of_audited_changes) {
  sluice_process s(env());
  wait_ready(s, admin_token);
  const auto change = [&](const std::string& token, const std::string& version) {
    return http_call(s.port(), "POST", "/api/v1/routes",
                     json{{"tenant", "acme"},
                          {"service", "tele-audit"},
                          {"env", "prod"},
                          {"version", version},
                          {"url", "http://127.0.0.1:1/"}}
                         .dump(),
                     {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}});
  };
  ASSERT_EQ(change(admin_token, "v1").status, 201);
  ASSERT_EQ(change(jwt(rs_, "alice@example.com", "admin"), "v2").status, 201);
  const auto events = http_call(s.port(), "GET", "/api/v1/routes/events?service=tele-audit", "",
                                {{"Authorization", std::string("Bearer ") + reader_token}});
  ASSERT_EQ(events.status, 200) << events.body;
  std::map<std::string, std::string> actor_by_version;
  const json listed = events.json();
  for (const auto& item : listed["items"])
    actor_by_version[item["version"].get<std::string>()] = item["actor"].get<std::string>();
  EXPECT_EQ(actor_by_version["v1"], "ops-admin") << events.body;
  EXPECT_EQ(actor_by_version["v2"], "jwt:alice@example.com") << events.body;

  const auto put = http_call(s.port(), "PUT", "/api/v1/services/tele-audited",
                             json{{"defaultFlavour", "std"},
                                  {"flavours", {{{"name", "std"}, {"url", "http://127.0.0.1:1"}}}}}
                                 .dump(),
                             {{"Content-Type", "application/json"},
                              {"Authorization", std::string("Bearer ") + admin_token}});
  ASSERT_TRUE(put.status == 201 || put.status == 200) << put.body;
  EXPECT_TRUE(
      s.wait_for_log("services: service tele-audited created through the API by ops-admin", 5s))
      << s.log();
}

TEST_F(auth_e2e, es256_key_pins_the_alg) {
  jwt_signer es(jwt_signer::kind::es256);
  write_file(key_path_, es.public_key_pem());
  sluice_process s(env({{"AUTH_JWT_HS256_SECRET", ""},
                        {"AUTH_JWT_ISSUER", "https://idp.example"},
                        {"AUTH_JWT_AUDIENCE", "sluice"}}));
  const auto status_with = [&](const std::string& token) {
    return http_call(s.port(), "GET", "/api/v1/status/buffers", "",
                     {{"Authorization", "Bearer " + token}})
        .status;
  };
  const json good = {{"sub", "es-reader"},         {"scope", "openid read"},
                     {"roles", {"read"}},          {"iss", "https://idp.example"},
                     {"aud", {"sluice", "other"}}, {"exp", unix_now() + 300}};
  EXPECT_EQ(status_with(es.sign(good)), 200);
  json wrong_aud = good;
  wrong_aud["aud"] = "other";
  EXPECT_EQ(status_with(es.sign(wrong_aud)), 401);
  json wrong_iss = good;
  wrong_iss["iss"] = "https://evil.example";
  EXPECT_EQ(status_with(es.sign(wrong_iss)), 401);
  json early = good;
  early["nbf"] = unix_now() + 600;
  EXPECT_EQ(status_with(es.sign(early)), 401);
  // HS256 is not configured here, RS256 is not the key's: both refused.
  EXPECT_EQ(status_with(hs_.sign(good)), 401);
  EXPECT_EQ(status_with(rs_.sign(good)), 401);
}

TEST_F(auth_e2e, a_bad_tokens_file_stops_the_start_with_a_message) {
  write_file(tokens_path_, R"({"tokens":[{"name":"x","sha256":"abc","roles":["read"]}]})");
  const auto r = sluice::test::run_sluice({}, env());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("AUTH_TOKENS_FILE " + tokens_path_ +
                          ": tokens[0].sha256: expected 64 hex digits"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace sluice::auth::e2e
