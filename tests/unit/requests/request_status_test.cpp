#include "sluice/requests/request_status.hpp"

#include "sluice/requests/async_request_submitter.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::requests {
namespace {

using json = nlohmann::json;
const std::string id = "0190c3a4-5b6c-7d8e-9f01-23456789abcd";

std::string header(const http::response& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name)
      return v;
  }
  return {};
}

TEST(requests_status_answer, pending_done_failed) {
  request_state pending{request_state::kind::pending, {}, {}, {}};
  auto r = status_answer(id, {}, pending, false);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"id":")" + id + R"(","status":"pending"})"));

  request_state done{request_state::kind::done, R"({"status": 201, "body": "x"})", {}, {}};
  r = status_answer(id, {}, done, true);
  EXPECT_EQ(r.status, 200);
  const json d = json::parse(r.body);
  EXPECT_EQ(d["status"], "done");
  EXPECT_EQ(d["response"]["status"], 201);
  EXPECT_FALSE(d.contains("error"));

  request_state failed{request_state::kind::failed, {}, R"({"code": "upstream_timeout"})", {}};
  const json f = json::parse(status_answer(id, {}, failed, false).body);
  EXPECT_EQ(f["status"], "failed");
  EXPECT_EQ(f["error"]["code"], "upstream_timeout");
  EXPECT_FALSE(f.contains("response"));
}

TEST(requests_status_answer, unknown_is_404_only_when_no_buffered_record_could_be_it) {
  const request_state unknown;
  auto r = status_answer(id, {}, unknown, false);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "request_not_found");

  r = status_answer(id, {}, unknown, true);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "replay_pending");
  EXPECT_EQ(header(r, "Retry-After"), "1");
}

TEST(requests_status_answer, postgres_unreachable_is_503_never_a_guess) {
  const request_state unknown;
  const auto r = status_answer(id, std::make_error_code(std::errc::timed_out), unknown, false);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "db_unavailable");
  EXPECT_FALSE(header(r, "Retry-After").empty());
}

TEST(requests_idempotency_key, the_rules_of_a_transaction_id) {
  EXPECT_FALSE(idempotency_key_problem("order-1"));
  EXPECT_FALSE(idempotency_key_problem(std::string(256, 'k')));
  EXPECT_FALSE(idempotency_key_problem("grüße"));
  EXPECT_TRUE(idempotency_key_problem(""));
  EXPECT_TRUE(idempotency_key_problem(std::string(257, 'k')));
  EXPECT_TRUE(idempotency_key_problem("a\tb"));
  EXPECT_TRUE(idempotency_key_problem("a\x7f"));
  EXPECT_TRUE(idempotency_key_problem("a\xC2\x85"));
  EXPECT_TRUE(idempotency_key_problem("caf\xe9"));
}

}  // namespace
}  // namespace sluice::requests
