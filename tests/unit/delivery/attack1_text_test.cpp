// attack1: text that reaches PostgreSQL from a delivery target (response excerpts, error texts,
// pause reasons) must be something PostgreSQL accepts, or a dead letter is refused.
#include "sluice/core/utf8.hpp"
#include "sluice/delivery/dead_letter_store.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

TEST(attack1_excerpt, a_nul_byte_never_reaches_postgresql) {
  // PostgreSQL's text refuses 0x00 ("invalid byte sequence for encoding UTF8: 0x00"), though
  // it is valid UTF-8: a target answering a body with a NUL made the dead letter unwritable.
  const std::string body("ok\0tail", 7);
  const std::string out = excerpt_of(body);
  EXPECT_EQ(out.find('\0'), std::string::npos);
  EXPECT_TRUE(is_valid_utf8(out));
  EXPECT_EQ(out, "ok\xEF\xBF\xBDtail");
}

TEST(attack1_excerpt, the_replacement_keeps_the_byte_bound) {
  const std::string zeros(4000, '\0');
  const std::string out = excerpt_of(zeros, 10);
  EXPECT_LE(out.size(), 10u);
  EXPECT_EQ(out.find('\0'), std::string::npos);
}

}  // namespace
}  // namespace sluice::delivery
