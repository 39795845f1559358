// What a delivery carries on the wire, through the real binary: Standard Webhooks signatures for
// two secrets, verified by an independent implementation (the npm `standardwebhooks` package,
// which also signs the spec's test vector once, confirming the unit test's expectation), a
// tampered body failing; and the plain headers (Idempotency-Key, X-Sluice-*, traceparent from a
// traceId, the subscription's own headers) with the payload bytes exactly as pushed, and the
// attempts as GET /api/v1/messages/{id}/deliveries lists them.
#include <cstdio>
#include <fstream>
#include <regex>

#include "e2e_support.hpp"
#include "sluice_test/npm.hpp"

#ifndef SLUICE_DELIVERY_TEST_DIR
#error "SLUICE_DELIVERY_TEST_DIR must point at tests/integration/delivery"
#endif

namespace sluice::delivery::e2e {
namespace {

using namespace std::chrono_literals;

constexpr const char* spec_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* second_secret = "whsec_ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";

std::string base64(const std::string& in) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6)
      out += alphabet[(v >> s) & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size())
      v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Runs e2e_webhooks_verify.js on `input` with node and the npm package; returns its answer.
json verify_with_npm(const json& input, const std::string& dir) {
  const std::string modules = sluice::test::ensure_npm_package("standardwebhooks", "1.1");
  const std::string path = dir + "/deliveries.json";
  std::ofstream(path) << input.dump();
  const std::string command = "NODE_PATH='" + modules +
                              "' node '" SLUICE_DELIVERY_TEST_DIR "/e2e_webhooks_verify.js' '" +
                              path + "' 2>&1";
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr)
    throw std::runtime_error("popen failed");
  std::string out;
  char buf[4096];
  while (const auto n = std::fread(buf, 1, sizeof buf, p))
    out.append(buf, n);
  const int rc = ::pclose(p);
  if (rc != 0)
    throw std::runtime_error("node failed: " + out);
  return json::parse(out);
}

class e2e_signature : public delivery_e2e {};

TEST_F(e2e_signature, two_secrets_verify_with_the_standardwebhooks_package) {
  hook_target target(loop_);
  sluice_process s(env());
  const auto q = queue("e2e-sig");
  put_subscription(s, q, "signed",
                   {{"url", target.url()}, {"secrets", {spec_secret, second_secret}}});

  // Payload bytes the signature must cover exactly: spacing, escapes and non-ASCII kept.
  const std::vector<std::string> payloads = {
      R"({"test": 2432232314})", R"({"a" : [1, 2,3] , "s":"\u00e9 é ✓"})", R"("just a string")",
      "42", R"([{"k":null},{"k":true}])"};
  std::string body = R"({"items":[)";
  for (std::size_t i = 0; i < payloads.size(); ++i)
    body +=
        (i ? "," : "") + std::string(R"({"queue":")") + q + R"(","payload":)" + payloads[i] + "}";
  body += "]}";
  const auto ids = push_raw(s, body);
  ASSERT_EQ(ids.size(), payloads.size());
  ASSERT_TRUE(eventually([&] { return target.count() >= payloads.size(); }, 30s)) << s.log();

  json input{{"secrets", {spec_secret, second_secret}}, {"deliveries", json::array()}};
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  for (const auto& h : target.hits()) {
    json headers;
    for (const char* name : {"webhook-id", "webhook-timestamp", "webhook-signature"}) {
      ASSERT_TRUE(h.has_header(name)) << name;
      headers[name] = h.header(name);
    }
    EXPECT_EQ(h.header("webhook-id"), h.header("Idempotency-Key"));
    EXPECT_NEAR(std::stoll(h.header("webhook-timestamp")), now_s, 30);
    // One signature per secret, space-separated.
    EXPECT_TRUE(std::regex_match(h.header("webhook-signature"),
                                 std::regex(R"(v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=)")))
        << h.header("webhook-signature");
    input["deliveries"].push_back({{"body_b64", base64(h.body)}, {"headers", headers}});
  }
  const auto answer = verify_with_npm(input, dir_.path());
  std::printf("[measure] standardwebhooks signed the spec vector as %s\n",
              answer["vector"].get<std::string>().c_str());
  EXPECT_EQ(answer["vector"], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  ASSERT_EQ(answer["results"].size(), payloads.size());
  std::set<std::string> verified_ids;
  for (const auto& r : answer["results"]) {
    EXPECT_EQ(r["verified"], json::array({true, true})) << r.dump();
    EXPECT_EQ(r["tampered"], json::array({false, false})) << r.dump();
    EXPECT_EQ(r["other_secret"], false) << r.dump();
    verified_ids.insert(r["id"].get<std::string>());
  }
  EXPECT_EQ(verified_ids, std::set<std::string>(ids.begin(), ids.end()));
}

TEST_F(e2e_signature, plain_delivery_headers_and_payload_bytes) {
  const std::string fail_twice_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  hook_target target(loop_, [&](const http::request& req, std::size_t) {
    if (req.header("X-Sluice-Partition").value_or("") == "eu-1" &&
        req.header("X-Sluice-Attempt").value_or("") != "3")
      return http::response::text(500, "text/plain", "not yet");
    return http::response::text(200, "text/plain", "ok");
  });
  sluice_process s(env());
  const auto q = queue("e2e-headers");
  put_subscription(
      s, q, "plain",
      {{"url", target.url("/in?team=a")},
       {"headers", {{"Authorization", "Bearer e2e"}}},
       {"retry", {{"maxAttempts", 5}, {"initialBackoffMs", 10}, {"maxBackoffMs", 50}}}});

  const std::string payload_a = R"({"a" : [1, 2,3] ,"s":"\u00e9 é"})";
  const std::string traceparent_b = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const std::string body =
      std::string(R"({"items":[)") + R"({"queue":")" + q + R"(","partition":"eu-1","traceId":")" +
      fail_twice_trace + R"(","payload":)" + payload_a + "}," + R"({"queue":")" + q +
      R"(","partition":"us","traceId":")" + traceparent_b + R"(","payload":[1,2]},)" +
      R"({"queue":")" + q + R"(","traceId":"t-1","payload":"x"}]})";
  const auto ids = push_raw(s, body);
  ASSERT_EQ(ids.size(), 3u);
  ASSERT_TRUE(eventually([&] { return target.successes_by_key().size() == 3; }, 30s)) << s.log();

  const auto by_key = target.by_key();
  ASSERT_EQ(by_key.size(), 3u);
  for (const auto& [key, hits] : by_key) {
    for (const auto& h : hits) {
      EXPECT_EQ(h.method, "POST");
      EXPECT_EQ(h.target, "/in?team=a");
      EXPECT_EQ(h.header("Content-Type"), "application/json");
      EXPECT_EQ(h.header("X-Sluice-Queue"), q);
      EXPECT_EQ(h.header("Authorization"), "Bearer e2e");
      EXPECT_FALSE(h.has_header("webhook-signature")) << "no secrets, no signature";
    }
  }
  // A: partition eu-1, the payload byte for byte, attempts 1, 2, 3, a traceparent made of the
  // 32-hex traceId with a new span id each attempt.
  const auto& a = by_key.at(ids[0]);
  ASSERT_EQ(a.size(), 3u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].body, payload_a);
    EXPECT_EQ(a[i].header("X-Sluice-Partition"), "eu-1");
    EXPECT_EQ(a[i].attempt(), static_cast<int>(i + 1));
    EXPECT_TRUE(std::regex_match(a[i].header("traceparent"),
                                 std::regex("00-" + fail_twice_trace + "-[0-9a-f]{16}-01")))
        << a[i].header("traceparent");
  }
  EXPECT_EQ(a[0].status, 500);
  EXPECT_EQ(a[2].status, 200);
  // Every attempt is recorded (written in batches, so shortly after).
  json attempts;
  EXPECT_TRUE(eventually(
      [&] {
        const auto r =
            sluice::test::http_call(s.port(), "GET", "/api/v1/messages/" + ids[0] + "/deliveries");
        if (r.status != 200)
          return false;
        attempts = r.json()["items"];
        return attempts.size() >= 3;
      },
      10s, 50ms))
      << attempts.dump();
  ASSERT_EQ(attempts.size(), 3u) << attempts.dump();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(attempts[i]["attempt"], i + 1) << attempts.dump();
    EXPECT_EQ(attempts[i]["queue"], q);
    EXPECT_EQ(attempts[i]["subscription"], "plain");
    EXPECT_EQ(attempts[i]["status"], i < 2 ? 500 : 200) << attempts.dump();
    EXPECT_EQ(attempts[i]["outcome"], i < 2 ? "retry" : "delivered") << attempts.dump();
  }
  // B: a full traceparent passed on as is.
  const auto& b = by_key.at(ids[1]);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].body, "[1,2]");
  EXPECT_EQ(b[0].header("X-Sluice-Partition"), "us");
  EXPECT_EQ(b[0].header("traceparent"), traceparent_b);
  EXPECT_EQ(b[0].attempt(), 1);
  // C: the default partition; a traceId that is no trace context gives no traceparent.
  const auto& c = by_key.at(ids[2]);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].body, R"("x")");
  EXPECT_EQ(c[0].header("X-Sluice-Partition"), "Default");
  EXPECT_FALSE(c[0].has_header("traceparent"));
}

}  // namespace
}  // namespace sluice::delivery::e2e
