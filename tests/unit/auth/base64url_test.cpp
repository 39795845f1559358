#include "sluice/auth/base64url.hpp"

#include <gtest/gtest.h>

namespace sluice::auth {
namespace {

TEST(base64url, round_trips_every_length_without_padding) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    const std::string text = base64url_encode(bytes);
    EXPECT_EQ(text.find('='), std::string::npos);
    const auto back = base64url_decode(text);
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(*back, bytes);
    bytes.push_back(static_cast<char>(n * 37 + 250));
  }
}

TEST(base64url, uses_the_url_safe_alphabet) {
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff"));
}

TEST(base64url, refuses_padding_standard_alphabet_and_impossible_lengths) {
  EXPECT_FALSE(base64url_decode("YQ=="));
  EXPECT_FALSE(base64url_decode("+/8"));
  EXPECT_FALSE(base64url_decode("YWJjZ"));  // 4n+1 characters
  EXPECT_FALSE(base64url_decode("YW Jj"));
  EXPECT_FALSE(base64url_decode("YR"));  // leftover bits set: a second spelling of "a"
  EXPECT_EQ(base64url_decode("YQ"), std::string("a"));
  EXPECT_EQ(base64url_decode(""), std::string());
}

}  // namespace
}  // namespace sluice::auth
