#include "sluice/store/errc.hpp"

#include <gtest/gtest.h>

namespace sluice::store {
namespace {

TEST(store_errc, has_its_own_category_and_messages) {
  const std::error_code ec = errc::timeout;
  EXPECT_EQ(ec.category().name(), std::string("sluice.store"));
  EXPECT_EQ(ec.message(), "PostgreSQL operation timed out");
  EXPECT_NE(std::error_code(errc::connection_lost), std::error_code(errc::timeout));
}

TEST(store_errc, data_errors_are_rejected_everything_else_unavailable) {
  EXPECT_EQ(classify({}), failure_kind::none);
  for (const char* state : {"22P02", "22021", "22001", "23505", "23502", "54000"}) {
    EXPECT_EQ(classify(errc::query_failed, state), failure_kind::rejected) << state;
  }
  // Syntax, missing table, statement timeout, admin shutdown, disk full, read-only standby.
  for (const char* state : {"42601", "42P01", "57014", "57P01", "53100", "25006", ""}) {
    EXPECT_EQ(classify(errc::query_failed, state), failure_kind::unavailable) << state;
  }
  for (errc e : {errc::connection_failed, errc::connection_lost, errc::timeout,
                 errc::pipeline_aborted, errc::shut_down, errc::duplicate_unresolved}) {
    EXPECT_EQ(classify(e, "22P02"), failure_kind::unavailable) << "only a rejected statement "
                                                                  "blames the data";
    EXPECT_TRUE(is_unavailable(e));
  }
  EXPECT_EQ(classify(errc::pool_exhausted), failure_kind::overloaded);
  EXPECT_TRUE(is_rejected(errc::query_failed, "23514"));
}

}  // namespace
}  // namespace sluice::store
