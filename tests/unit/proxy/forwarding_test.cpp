#include "sluice/proxy/forwarding.hpp"

#include <gtest/gtest.h>

namespace sluice::proxy {
namespace {

http::request with_headers(rpc::header_list headers) {
  http::request req;
  req.method = "POST";
  req.headers = std::move(headers);
  return req;
}

forwarding_info info_for(std::string id, std::string address = "10.0.0.7") {
  forwarding_info info;
  info.request_id = std::move(id);
  info.client_address = std::move(address);
  return info;
}

std::mt19937_64 rng{42};

TEST(forwarding, end_to_end_headers_pass_byte_exact_in_order_with_duplicates) {
  const auto req = with_headers({{"Host", "sluice:8080"},
                                 {"Authorization", "Bearer  a.b.c "},
                                 {"X-Thing", "1"},
                                 {"x-thing", "2"},
                                 {"Accept", "*/*"},
                                 {"X-Request-Id", "req-1"}});
  const auto out = forward_request_headers(req, info_for("req-1"), rng);
  ASSERT_GE(out.size(), 5u);
  EXPECT_EQ(out[0], (std::pair<std::string, std::string>{"Authorization", "Bearer  a.b.c "}));
  EXPECT_EQ(out[1], (std::pair<std::string, std::string>{"X-Thing", "1"}));
  EXPECT_EQ(out[2], (std::pair<std::string, std::string>{"x-thing", "2"}));
  EXPECT_EQ(out[3], (std::pair<std::string, std::string>{"Accept", "*/*"}));
  EXPECT_EQ(out[4], (std::pair<std::string, std::string>{"X-Request-Id", "req-1"}));
  EXPECT_EQ(out[5].first, "traceparent");
  EXPECT_EQ(out[6], (std::pair<std::string, std::string>{"X-Forwarded-For", "10.0.0.7"}));
  EXPECT_EQ(out[7], (std::pair<std::string, std::string>{"X-Forwarded-Proto", "http"}));
  EXPECT_EQ(out[8], (std::pair<std::string, std::string>{"X-Forwarded-Host", "sluice:8080"}));
  EXPECT_EQ(out.size(), 9u);
}

TEST(forwarding, hop_by_hop_headers_and_those_connection_names_are_dropped) {
  const auto req = with_headers({{"Connection", "keep-alive, X-Secret-Hop"},
                                 {"connection", "Upgrade"},
                                 {"Keep-Alive", "timeout=5"},
                                 {"Proxy-Authorization", "Basic x"},
                                 {"Proxy-Connection", "close"},
                                 {"TE", "trailers"},
                                 {"Trailer", "X-Sum"},
                                 {"Transfer-Encoding", "chunked"},
                                 {"Upgrade", "websocket"},
                                 {"x-secret-hop", "dropped"},
                                 {"Host", "h"},
                                 {"Content-Length", "12"},
                                 {"X-Kept", "kept"}});
  const auto out = forward_request_headers(req, info_for("id"), rng);
  for (const auto& [name, value] : out) {
    EXPECT_FALSE(is_hop_by_hop(name)) << name;
    EXPECT_NE(name, "x-secret-hop");
    EXPECT_NE(name, "Content-Length");
  }
  EXPECT_EQ(out[0], (std::pair<std::string, std::string>{"X-Kept", "kept"}));
}

TEST(forwarding, x_forwarded_for_is_appended_to_the_last_one_and_proto_host_kept) {
  const auto req = with_headers({{"X-Forwarded-For", "1.1.1.1"},
                                 {"X-Forwarded-For", "2.2.2.2"},
                                 {"X-Forwarded-Proto", "https"},
                                 {"X-Forwarded-Host", "public.example"},
                                 {"Host", "internal"}});
  const auto out = forward_request_headers(req, info_for("id"), rng);
  EXPECT_EQ(out[0].second, "1.1.1.1");
  EXPECT_EQ(out[1].second, "2.2.2.2, 10.0.0.7");
  EXPECT_EQ(out[2].second, "https");
  EXPECT_EQ(out[3].second, "public.example");
  for (const auto& [name, value] : out)
    EXPECT_NE(value, "internal") << "no second X-Forwarded-Host";
}

TEST(forwarding, a_request_id_replaced_by_the_server_is_replaced_in_place) {
  const auto req = with_headers({{"A", "1"}, {"X-Request-Id", ""}, {"B", "2"}});
  const auto out = forward_request_headers(req, info_for("generated"), rng);
  EXPECT_EQ(out[1], (std::pair<std::string, std::string>{"X-Request-Id", "generated"}));
}

TEST(traceparent, a_valid_one_keeps_its_trace_and_flags_with_a_new_parent) {
  const std::string in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ASSERT_TRUE(valid_traceparent(in));
  const auto out = next_traceparent(in, rng);
  EXPECT_TRUE(valid_traceparent(out)) << out;
  EXPECT_EQ(out.substr(0, 36), in.substr(0, 36));
  EXPECT_NE(out.substr(36, 16), in.substr(36, 16));
  EXPECT_EQ(out.substr(52), "-01");
}

TEST(traceparent, absent_or_malformed_gets_a_new_valid_trace) {
  for (const std::optional<std::string_view> in :
       {std::optional<std::string_view>(), std::optional<std::string_view>("garbage"),
        std::optional<std::string_view>("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        std::optional<std::string_view>("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        std::optional<std::string_view>("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        std::optional<std::string_view>(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")}) {
    const auto out = next_traceparent(in, rng);
    EXPECT_TRUE(valid_traceparent(out)) << out;
    EXPECT_EQ(out.size(), 55u);
    if (in) {
      EXPECT_NE(out.substr(3, 32), std::string(in->size() >= 35 ? in->substr(3, 32) : ""));
    }
  }
  EXPECT_NE(next_traceparent(std::nullopt, rng), next_traceparent(std::nullopt, rng));
}

TEST(traceparent, a_later_version_with_extra_fields_is_accepted_and_sent_on_as_00) {
  const std::string in = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future";
  ASSERT_TRUE(valid_traceparent(in));
  const auto out = next_traceparent(in, rng);
  EXPECT_EQ(out.substr(0, 35), "00-4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
}

TEST(forwarding, the_traceparent_of_the_request_is_rewritten_in_place) {
  const auto req =
      with_headers({{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                    {"tracestate", "congo=t61rcWkgMzE"}});
  const auto out = forward_request_headers(req, info_for("id"), rng);
  EXPECT_EQ(out[0].first, "traceparent");
  EXPECT_EQ(out[0].second.substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_EQ(out[1], (std::pair<std::string, std::string>{"tracestate", "congo=t61rcWkgMzE"}));
}

TEST(target, is_the_remainder_and_query_undecoded) {
  EXPECT_EQ(relative_target("/a/b%2Fc", "x=%20&y"), "/a/b%2Fc?x=%20&y");
  EXPECT_EQ(relative_target("", std::nullopt), "");
  EXPECT_EQ(relative_target("/", std::nullopt), "/");
  EXPECT_EQ(relative_target("", ""), "?") << "an empty query is kept as sent";
  EXPECT_EQ(relative_target("//c%20d", "q=1"), "//c%20d?q=1");
}

TEST(target, remainder_and_query_come_from_the_raw_request) {
  http::request req;
  req.target = "/proxy/pay/a%20b//c?x=%2F&&";
  req.path = "/proxy/pay/a%20b//c";
  EXPECT_EQ(path_remainder(req, "pay"), "/a%20b//c");
  EXPECT_EQ(raw_query(req), "x=%2F&&");
  req.target = req.path = "/proxy/pay";
  EXPECT_EQ(path_remainder(req, "pay"), "");
  EXPECT_FALSE(raw_query(req));
}

TEST(timeout, only_positive_integers_are_accepted) {
  EXPECT_EQ(parse_timeout_ms("250"), 250);
  EXPECT_EQ(parse_timeout_ms(" 10 "), 10);
  for (const char* bad : {"", "0", "-5", "1.5", "abc", "10ms", "12345678901"})
    EXPECT_FALSE(parse_timeout_ms(bad)) << bad;
}

TEST(prefer, respond_async_and_wait_from_any_prefer_header) {
  auto req = with_headers({{"Prefer", "respond-async, wait=5"}});
  auto p = parse_prefer(req);
  EXPECT_TRUE(p.respond_async);
  EXPECT_EQ(p.wait_seconds, 5);
  req = with_headers({{"prefer", "return=minimal"}, {"Prefer", "RESPOND-ASYNC;x=1"}});
  p = parse_prefer(req);
  EXPECT_TRUE(p.respond_async);
  EXPECT_FALSE(p.wait_seconds);
  req = with_headers({{"Prefer", "wait=abc"}});
  p = parse_prefer(req);
  EXPECT_FALSE(p.respond_async);
  EXPECT_FALSE(p.wait_seconds);
}

TEST(reply, headers_lose_hop_by_hop_framing_and_the_request_id_and_give_the_content_type) {
  http::response r;
  reply_headers({{"Content-Type", "text/csv"},
                 {"Content-Length", "3"},
                 {"Connection", "close"},
                 {"Transfer-Encoding", "chunked"},
                 {"X-Request-Id", "x"},
                 {"Set-Cookie", "a=1"},
                 {"Set-Cookie", "b=2"}},
                r);
  EXPECT_EQ(r.content_type, "text/csv");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0].second, "a=1");
  EXPECT_EQ(r.headers[1].second, "b=2");
  http::response none;
  reply_headers({}, none);
  EXPECT_EQ(none.content_type, "");
}

}  // namespace
}  // namespace sluice::proxy
