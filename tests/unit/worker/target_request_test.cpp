#include "sluice/worker/target_request.hpp"

#include "sluice/worker/forward_outcome.hpp"

#include <gtest/gtest.h>

namespace sluice::worker {
namespace {

rpc::rpc_request sample() {
  rpc::rpc_request r;
  r.id = "req-1";
  r.service = "payments";
  r.flavour = "green";
  r.method = "PATCH";
  r.target = "/orders/a%2Fb?x=1&x=2";
  r.headers = {{"Host", "sluice.example"}, {"Authorization", "Bearer abc"}, {"X-Dup", "one"},
               {"Connection", "close"},    {"Content-Length", "3"},         {"X-Dup", "two"},
               {"X-Flavour", "spoofed"}};
  r.body = std::string("\x00\xff\x01", 3);
  return r;
}

TEST(compose_target, base_path_then_rpc_target_undecoded) {
  EXPECT_EQ(compose_target("/api", "/orders/a%2Fb?x=1"), "/api/orders/a%2Fb?x=1");
  EXPECT_EQ(compose_target("/api/", "/orders"), "/api/orders");
  EXPECT_EQ(compose_target("", "/orders"), "/orders");
  EXPECT_EQ(compose_target("/", "/orders"), "/orders");
  EXPECT_EQ(compose_target("/api", ""), "/api");
  EXPECT_EQ(compose_target("/api", "?q=1"), "/api?q=1");
  EXPECT_EQ(compose_target("/api/", ""), "/api/") << "a trailing slash with nothing after it";
  EXPECT_EQ(compose_target("/api", "/"), "/api/");
  EXPECT_EQ(compose_target("", "?"), "/?") << "an empty query is kept as sent";
  EXPECT_EQ(compose_target("/base", "/a%2Fb//c%20d?x=%2F"), "/base/a%2Fb//c%20d?x=%2F");
}

TEST(compose_target, never_empty) {
  EXPECT_EQ(compose_target("", ""), "/");
  EXPECT_EQ(compose_target("", "?q=1"), "/?q=1");
  EXPECT_EQ(compose_target("/", ""), "/");
}

TEST(compose_headers, keeps_order_and_duplicates_and_adds_flavour_and_key) {
  const auto h = compose_headers(sample());
  const rpc::header_list expected{{"Authorization", "Bearer abc"},
                                  {"X-Dup", "one"},
                                  {"X-Dup", "two"},
                                  {"X-Flavour", "green"},
                                  {"Idempotency-Key", "req-1"}};
  EXPECT_EQ(h, expected);
}

TEST(compose_headers, the_clients_idempotency_key_wins) {
  auto r = sample();
  r.headers.emplace_back("idempotency-key", "client-key");
  const auto h = compose_headers(r);
  int keys = 0;
  for (const auto& [name, value] : h) {
    if (name == "idempotency-key" || name == "Idempotency-Key") {
      ++keys;
      EXPECT_EQ(value, "client-key");
    }
  }
  EXPECT_EQ(keys, 1);
  EXPECT_EQ(idempotency_key(r), "client-key");
  EXPECT_EQ(idempotency_key(sample()), "req-1");
}

TEST(compose_request, carries_method_body_and_origin) {
  target_origin to;
  to.host = "payments-green.shop";
  to.port = 8080;
  to.base_path = "/v1";
  const auto out = compose_request(sample(), to);
  EXPECT_EQ(out.method, "PATCH");
  EXPECT_EQ(out.host, "payments-green.shop");
  EXPECT_EQ(out.port, 8080);
  EXPECT_EQ(out.target, "/v1/orders/a%2Fb?x=1&x=2");
  EXPECT_EQ(out.body, std::string("\x00\xff\x01", 3));
}

TEST(hop_by_hop, names_any_case) {
  EXPECT_TRUE(is_hop_by_hop("Connection"));
  EXPECT_TRUE(is_hop_by_hop("TRANSFER-ENCODING"));
  EXPECT_TRUE(is_hop_by_hop("keep-alive"));
  EXPECT_FALSE(is_hop_by_hop("Authorization"));
  EXPECT_FALSE(is_hop_by_hop("X-Connection"));
}

TEST(outcome_mapping, client_errors_to_replies) {
  const auto unreachable = reply_for_error(http::client_errc::connect_failed);
  EXPECT_EQ(unreachable.status, 502);
  EXPECT_EQ(unreachable.error_code, "upstream_unavailable");
  EXPECT_NE(unreachable.body.find("\"upstream_unavailable\""), std::string::npos);
  EXPECT_EQ(outcome_of(unreachable), outcome::upstream_error);

  const auto slow = reply_for_error(http::client_errc::timeout);
  EXPECT_EQ(slow.status, 504);
  EXPECT_EQ(slow.error_code, "upstream_timeout");
  EXPECT_EQ(outcome_of(slow), outcome::timeout);

  const auto large = reply_for_error(http::client_errc::response_too_large);
  EXPECT_EQ(large.status, 502);
  EXPECT_EQ(large.error_code, "upstream_response_too_large");
  EXPECT_EQ(outcome_of(large), outcome::upstream_error);

  const auto cut = reply_for_error(http::client_errc::bad_response);
  EXPECT_EQ(cut.status, 502);
  EXPECT_EQ(cut.error_code, "upstream_unavailable");
}

TEST(outcome_mapping, a_target_answer_is_ok_whatever_its_status) {
  http::client_response r;
  r.status = 503;
  r.headers = {{"Content-Type", "text/plain"},
               {"Transfer-Encoding", "chunked"},
               {"Content-Length", "2"},
               {"Set-Cookie", "a=1"},
               {"Set-Cookie", "b=2"}};
  r.body = "no";
  const auto reply = reply_for_response(r);
  EXPECT_EQ(reply.status, 503);
  EXPECT_TRUE(reply.error_code.empty());
  EXPECT_EQ(outcome_of(reply), outcome::ok);
  const rpc::header_list expected{{"Content-Type", "text/plain"},
                                  {"Content-Length", "2"},
                                  {"Set-Cookie", "a=1"},
                                  {"Set-Cookie", "b=2"}};
  EXPECT_EQ(reply.headers, expected);
  EXPECT_EQ(reply.body, "no");
}

TEST(outcome_mapping, labels) {
  EXPECT_STREQ(to_string(outcome::ok), "ok");
  EXPECT_STREQ(to_string(outcome::upstream_error), "upstream_error");
  EXPECT_STREQ(to_string(outcome::timeout), "timeout");
  EXPECT_STREQ(to_string(outcome::expired), "expired");
  EXPECT_STREQ(to_string(outcome::malformed), "malformed");
}

}  // namespace
}  // namespace sluice::worker
