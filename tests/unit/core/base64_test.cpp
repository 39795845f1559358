#include "sluice/core/base64.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(base64, rfc4648_vectors) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
  }
}

TEST(base64, every_byte_value_round_trips) {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 37)
    EXPECT_EQ(base64_decode(base64_encode(all.substr(0, n))), all.substr(0, n)) << n;
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
}

TEST(base64, refuses_what_is_not_canonical_base64) {
  EXPECT_FALSE(base64_decode("Zg="));       // length
  EXPECT_FALSE(base64_decode("Zg=a"));      // padding then data
  EXPECT_FALSE(base64_decode("Z==="));      // too much padding
  EXPECT_FALSE(base64_decode("Zm9v!A=="));  // outside the alphabet
  EXPECT_FALSE(base64_decode("Zh=="));      // unused bits set
  EXPECT_FALSE(base64_decode("Zm=vYg=="));  // padding in the middle
}

}  // namespace
}  // namespace sluice
