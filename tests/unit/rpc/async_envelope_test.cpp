#include "sluice/rpc/async_envelope.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::rpc {
namespace {

using json = nlohmann::json;

rpc_request sample() {
  rpc_request r;
  r.id = "ignored: the message id is the request id";
  r.service = "payments";
  r.flavour = "std";
  r.method = "POST";
  r.target = "/v1/charge?amount=10&amount=20&q=%2F";
  r.headers = {{"Content-Type", "application/json"},
               {"Set-Cookie", "a=1"},
               {"set-cookie", "b=2"},
               {"X-Empty", ""}};
  r.body = R"({"amount":10,"note":"grüße"})";
  return r;
}

TEST(rpc_async_envelope, reserved_queue_names) {
  EXPECT_EQ(async_queue("payments"), "@async.payments");
  EXPECT_TRUE(is_async_queue("@async.payments"));
  EXPECT_FALSE(is_async_queue("@async."));
  EXPECT_FALSE(is_async_queue("async.payments"));
  EXPECT_FALSE(is_async_queue("payments"));
  EXPECT_EQ(service_of_async_queue("@async.pay.ments"), "pay.ments");
  EXPECT_EQ(service_of_async_queue("orders"), "");
  EXPECT_EQ(async_exchange("shop", "payments"), "shop.payments");
}

TEST(rpc_async_envelope, text_request_is_readable_json_with_headers_in_order) {
  const std::string payload = encode_async_envelope(sample(), "shop", {});
  const json e = json::parse(payload);
  EXPECT_EQ(e["v"], 1);
  EXPECT_EQ(e["service"], "payments");
  EXPECT_EQ(e["namespace"], "shop");
  EXPECT_EQ(e["flavour"], "std");
  EXPECT_EQ(e["method"], "POST");
  EXPECT_EQ(e["target"], "/v1/charge?amount=10&amount=20&q=%2F");
  EXPECT_FALSE(e.contains("targetEncoding"));
  EXPECT_EQ(e["bodyEncoding"], "utf8");
  EXPECT_EQ(e["body"], R"({"amount":10,"note":"grüße"})");
  EXPECT_EQ(e["headers"], json::parse(R"([["Content-Type","application/json"],
      ["Set-Cookie","a=1"],["set-cookie","b=2"],["X-Empty",""]])"));
  EXPECT_FALSE(e.contains("reply_to"));
  EXPECT_FALSE(e.contains("correlation_id"));

  std::string why;
  const auto d = decode_async_envelope(payload, &why);
  ASSERT_TRUE(d) << why;
  EXPECT_EQ(d->namespace_, "shop");
  EXPECT_EQ(d->request.service, "payments");
  EXPECT_EQ(d->request.flavour, "std");
  EXPECT_EQ(d->request.method, "POST");
  EXPECT_EQ(d->request.target, sample().target);
  EXPECT_EQ(d->request.headers, sample().headers);
  EXPECT_EQ(d->request.body, sample().body);
  EXPECT_TRUE(d->request.async);
  EXPECT_EQ(d->request.deadline_ms, 0);
  EXPECT_TRUE(d->reply.reply_to.empty());
  EXPECT_TRUE(d->reply.correlation_id.empty());
}

TEST(rpc_async_envelope, binary_bytes_round_trip_through_base64) {
  rpc_request r = sample();
  r.body = std::string("\x00\x01\xfe\xff text", 9);
  r.target = "/raw/\xff\xfe";
  r.headers.emplace_back("X-Obs-Text", "caf\xe9");  // Latin-1, not UTF-8
  const std::string payload = encode_async_envelope(r, "default", {"reply-q", "c-1"});
  const json e = json::parse(payload);
  EXPECT_EQ(e["bodyEncoding"], "base64");
  EXPECT_EQ(e["targetEncoding"], "base64");
  EXPECT_EQ(e["headers"].back()[2], "base64");
  EXPECT_EQ(e["reply_to"], "reply-q");
  EXPECT_EQ(e["correlation_id"], "c-1");

  const auto d = decode_async_envelope(payload, nullptr);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->request.body, r.body);
  EXPECT_EQ(d->request.target, r.target);
  EXPECT_EQ(d->request.headers, r.headers);
  EXPECT_EQ(d->reply.reply_to, "reply-q");
  EXPECT_EQ(d->reply.correlation_id, "c-1");
}

TEST(rpc_async_envelope, a_nul_byte_makes_the_body_base64) {
  // Valid UTF-8, but PostgreSQL's jsonb (and many JSON readers) refuse \u0000.
  rpc_request r = sample();
  r.body = std::string("a\0b", 3);
  const json e = json::parse(encode_async_envelope(r, "default", {}));
  EXPECT_EQ(e["bodyEncoding"], "base64");
  EXPECT_EQ(decode_async_envelope(e.dump(), nullptr)->request.body, r.body);
}

TEST(rpc_async_envelope, empty_body_and_no_headers) {
  rpc_request r = sample();
  r.body.clear();
  r.headers.clear();
  const auto d = decode_async_envelope(encode_async_envelope(r, "default", {}), nullptr);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->request.body, "");
  EXPECT_TRUE(d->request.headers.empty());
}

TEST(rpc_async_envelope, refuses_what_is_not_an_envelope) {
  const std::string good = encode_async_envelope(sample(), "shop", {});
  const auto without = [&](const char* key) {
    json e = json::parse(good);
    e.erase(key);
    return e.dump();
  };
  const auto with = [&](const char* key, json value) {
    json e = json::parse(good);
    e[key] = std::move(value);
    return e.dump();
  };
  std::string why;
  EXPECT_FALSE(decode_async_envelope("not json", &why));
  EXPECT_FALSE(decode_async_envelope("[1]", &why));
  EXPECT_FALSE(decode_async_envelope(with("v", 2), &why));
  EXPECT_NE(why.find("version"), std::string::npos);
  for (const char* key : {"v", "service", "namespace", "flavour", "method", "target", "headers",
                          "body", "bodyEncoding"})
    EXPECT_FALSE(decode_async_envelope(without(key), &why)) << key;
  EXPECT_FALSE(decode_async_envelope(with("bodyEncoding", "gzip"), &why));
  EXPECT_FALSE(decode_async_envelope(with("bodyEncoding", "base64"), &why))
      << "the utf8 body is not valid base64";
  EXPECT_FALSE(decode_async_envelope(with("headers", json::array({json::array({"A"})})), &why));
  EXPECT_FALSE(decode_async_envelope(with("headers", json::array({json::array({"A", 1})})), &why));
  EXPECT_FALSE(decode_async_envelope(with("reply_to", 5), &why));
}

}  // namespace
}  // namespace sluice::rpc
