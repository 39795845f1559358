#include "sluice/buffer/crc32c.hpp"

#include <string>

#include <gtest/gtest.h>

namespace sluice::buffer {
namespace {

TEST(crc32c, matches_known_vectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("a"), 0xC1D04330u);
  // RFC 3720 (iSCSI) B.4 test vectors.
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c(descending), 0x113FDB5Cu);
}

TEST(crc32c, hardware_and_portable_agree_on_every_length_and_alignment) {
  std::string data;
  for (int i = 0; i < 300; ++i)
    data.push_back(static_cast<char>(i * 7 + 3));
  for (std::size_t start = 0; start < 9; ++start) {
    for (std::size_t len = 0; start + len <= data.size(); len += 13) {
      ASSERT_EQ(crc32c(data.data() + start, len), crc32c_portable(data.data() + start, len))
          << "start " << start << " len " << len;
    }
  }
}

TEST(crc32c, chains_across_calls) {
  const std::string a = "hello, ", b = "durable world";
  EXPECT_EQ(crc32c(b, crc32c(a)), crc32c(a + b));
  EXPECT_EQ(crc32c_portable(b.data(), b.size(), crc32c_portable(a.data(), a.size())),
            crc32c(a + b));
}

}  // namespace
}  // namespace sluice::buffer
