#include "sluice/amqp/settings.hpp"

#include <gtest/gtest.h>

namespace sluice::amqp {
namespace {

TEST(amqp_settings, queue_type_parsing) {
  EXPECT_EQ(parse_queue_type("quorum"), queue_type::quorum);
  EXPECT_EQ(parse_queue_type("Classic"), queue_type::classic);
  EXPECT_FALSE(parse_queue_type("stream"));
  EXPECT_FALSE(parse_queue_type(""));
  EXPECT_EQ(queue_arguments(queue_type::classic), (field_table{{"x-queue-type", "classic"}}));
}

TEST(amqp_settings, defaults_map_to_client_options) {
  const auto o = make_client_options(settings{});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->connection.server.host, "localhost");
  EXPECT_EQ(o->connection.server.port, 5672);
  EXPECT_EQ(o->connection.heartbeat, std::chrono::seconds(30));
  EXPECT_EQ(o->publisher.confirm_window, 1000U);
  EXPECT_EQ(o->publisher.confirm_window_bytes, publisher_options{}.confirm_window_bytes);
  settings s;
  s.confirm_window_bytes = 12345;
  EXPECT_EQ(make_client_options(s)->publisher.confirm_window_bytes, 12345U);
}

TEST(amqp_settings, bad_values_name_the_setting) {
  std::string error;
  settings s;
  s.url = "http://h";
  EXPECT_FALSE(make_client_options(s, &error));
  EXPECT_EQ(error.rfind("RABBITMQ_URL: ", 0), 0U) << error;
  s = settings{};
  s.confirm_window = 0;
  EXPECT_FALSE(make_client_options(s, &error));
  EXPECT_EQ(error.rfind("RABBITMQ_CONFIRM_WINDOW", 0), 0U) << error;
  s = settings{};
  s.heartbeat = std::chrono::seconds(-1);
  EXPECT_FALSE(make_client_options(s, &error));
  EXPECT_EQ(error.rfind("RABBITMQ_HEARTBEAT_SEC", 0), 0U) << error;
  s = settings{};
  s.confirm_window_bytes = 0;
  EXPECT_FALSE(make_client_options(s, &error));
  EXPECT_EQ(error.rfind("RABBITMQ_CONFIRM_WINDOW_BYTES", 0), 0U) << error;
}

}  // namespace
}  // namespace sluice::amqp
