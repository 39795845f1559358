#include "sluice/amqp/error.hpp"

#include <gtest/gtest.h>

namespace sluice::amqp {
namespace {

TEST(amqp_error, client_errors_have_their_own_category) {
  const std::error_code ec = errc::heartbeat_timeout;
  EXPECT_STREQ(ec.category().name(), "amqp");
  EXPECT_EQ(ec.message(), "no heartbeat from the broker for two intervals");
  EXPECT_EQ(ec, errc::heartbeat_timeout);
  EXPECT_NE(ec, errc::timeout);
}

TEST(amqp_error, reply_codes_keep_the_broker_value) {
  const std::error_code ec = reply_code::precondition_failed;
  EXPECT_EQ(ec.value(), 406);
  EXPECT_STREQ(ec.category().name(), "amqp.reply");
  EXPECT_EQ(ec.message(), "PRECONDITION_FAILED");
  EXPECT_EQ(make_error_code(static_cast<reply_code>(403)), reply_code::access_refused);
  EXPECT_EQ(make_error_code(static_cast<reply_code>(999)).message(), "reply code 999");
  // Same number, different category: a reply code never equals a client error.
  EXPECT_NE(std::error_code(reply_code::not_found), std::error_code(404, error_category()));
}

TEST(amqp_error, close_reason_text) {
  close_reason r;
  r.error = reply_code::not_found;
  r.reply_code = 404;
  r.reply_text = "NOT_FOUND - no queue 'q' in vhost '/'";
  EXPECT_EQ(r.to_string(), "404 NOT_FOUND - no queue 'q' in vhost '/'");
  close_reason local;
  local.error = errc::timeout;
  EXPECT_EQ(local.to_string(), "deadline exceeded");
}

}  // namespace
}  // namespace sluice::amqp
