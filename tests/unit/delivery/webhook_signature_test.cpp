#include "sluice/delivery/webhook_signature.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

constexpr std::string_view vector_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view vector_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::string_view vector_timestamp = "1614265330";
constexpr std::string_view vector_body = R"({"test": 2432232314})";
constexpr std::string_view vector_signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

// The test vector published with the Standard Webhooks specification.
TEST(webhook_signature, reproduces_the_standard_webhooks_vector) {
  const auto key = decode_webhook_secret(vector_secret);
  ASSERT_TRUE(key);
  EXPECT_EQ(webhook_signature({*key}, vector_id, vector_timestamp, vector_body), vector_signature);
}

TEST(webhook_signature, signs_with_every_key_while_a_secret_rotates) {
  const auto old_key = decode_webhook_secret(vector_secret);
  const auto new_key = decode_webhook_secret("whsec_c2Vjb25kLXNlY3JldC1rZXktYnl0ZXM=");
  ASSERT_TRUE(old_key);
  ASSERT_TRUE(new_key);
  const std::string second =
      webhook_signature({*new_key}, vector_id, vector_timestamp, vector_body);
  // Computed independently (Python's hmac module) for the key bytes "second-secret-key-bytes".
  EXPECT_EQ(second, "v1,njtgxf66xDm+oHJZbtAxvqy/Bpcy0rGQsU+vk8oLGLo=");
  EXPECT_EQ(webhook_signature({*old_key, *new_key}, vector_id, vector_timestamp, vector_body),
            std::string(vector_signature) + " " + second);
}

TEST(webhook_signature, no_keys_means_an_empty_header) {
  EXPECT_EQ(webhook_signature({}, vector_id, vector_timestamp, vector_body), "");
}

TEST(webhook_signature, the_signature_covers_id_timestamp_and_body) {
  const auto key = decode_webhook_secret(vector_secret);
  ASSERT_TRUE(key);
  EXPECT_NE(webhook_signature({*key}, "msg_other", vector_timestamp, vector_body),
            vector_signature);
  EXPECT_NE(webhook_signature({*key}, vector_id, "1614265331", vector_body), vector_signature);
  EXPECT_NE(webhook_signature({*key}, vector_id, vector_timestamp, R"({"test": 2432232315})"),
            vector_signature);
}

TEST(webhook_signature, decodes_the_key_bytes) {
  EXPECT_EQ(decode_webhook_secret("whsec_aGVsbG8="), "hello");
}

TEST(webhook_signature, rejects_invalid_secrets) {
  EXPECT_FALSE(decode_webhook_secret(""));
  EXPECT_FALSE(decode_webhook_secret("whsec_"));
  EXPECT_FALSE(decode_webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));  // no prefix
  EXPECT_FALSE(decode_webhook_secret("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  EXPECT_FALSE(decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"));   // bad length
  EXPECT_FALSE(decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w"));  // alphabet
  EXPECT_FALSE(decode_webhook_secret("whsec_aGVs=bG8"));  // padding in the middle
  EXPECT_FALSE(decode_webhook_secret(" whsec_aGVsbG8="));
}

}  // namespace
}  // namespace sluice::delivery
