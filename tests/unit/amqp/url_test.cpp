#include "sluice/amqp/url.hpp"

#include <gtest/gtest.h>

namespace sluice::amqp {
namespace {

TEST(amqp_url, parses_every_part) {
  const auto u = url::parse("amqp://alice:s3cret@broker.example:5673/orders");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->user, "alice");
  EXPECT_EQ(u->password, "s3cret");
  EXPECT_EQ(u->host, "broker.example");
  EXPECT_EQ(u->port, 5673);
  EXPECT_EQ(u->vhost, "orders");
  EXPECT_FALSE(u->heartbeat);
}

TEST(amqp_url, defaults_when_parts_are_missing) {
  for (const char* text : {"amqp://rabbit", "amqp://rabbit/", "AMQP://rabbit"}) {
    const auto u = url::parse(text);
    ASSERT_TRUE(u) << text;
    EXPECT_EQ(u->user, "guest") << text;
    EXPECT_EQ(u->password, "guest") << text;
    EXPECT_EQ(u->host, "rabbit") << text;
    EXPECT_EQ(u->port, 5672) << text;
    EXPECT_EQ(u->vhost, "/") << text;
  }
  const auto empty_host = url::parse("amqp://");
  ASSERT_TRUE(empty_host);
  EXPECT_EQ(empty_host->host, "localhost");
}

TEST(amqp_url, amqps_is_tls_on_port_5671_by_default) {
  const auto u = url::parse("amqps://alice:pw@broker.example/orders");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 5671);
  EXPECT_EQ(u->host, "broker.example");
  EXPECT_EQ(u->to_string(), "amqps://alice@broker.example:5671/orders");
  const auto explicit_port = url::parse("AMQPS://h:15671");
  ASSERT_TRUE(explicit_port);
  EXPECT_TRUE(explicit_port->tls);
  EXPECT_EQ(explicit_port->port, 15671);
  const auto plain = url::parse("amqp://h");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->to_string(), "amqp://guest@h:5672/");
}

TEST(amqp_url, user_without_password_has_empty_password) {
  const auto u = url::parse("amqp://bob@h");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->user, "bob");
  EXPECT_EQ(u->password, "");
}

TEST(amqp_url, percent_decodes_user_password_host_and_vhost) {
  const auto u = url::parse("amqp://us%40er:p%3A%2Fss%25@h%2Dx:1/%2f");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->user, "us@er");
  EXPECT_EQ(u->password, "p:/ss%");
  EXPECT_EQ(u->host, "h-x");
  EXPECT_EQ(u->vhost, "/");
  const auto prod = url::parse("amqp://h/%2Fprod%20eu");
  ASSERT_TRUE(prod);
  EXPECT_EQ(prod->vhost, "/prod eu");
}

TEST(amqp_url, ipv6_host) {
  const auto u = url::parse("amqp://guest:guest@[::1]:55672/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 55672);
  const auto no_port = url::parse("amqp://[fe80::1]");
  ASSERT_TRUE(no_port);
  EXPECT_EQ(no_port->host, "fe80::1");
  EXPECT_EQ(no_port->port, 5672);
}

TEST(amqp_url, query_parameters) {
  const auto u =
      url::parse("amqp://h/?heartbeat=5&connection_timeout=2500&frame_max=8192&channel_max=16");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->heartbeat, std::chrono::seconds(5));
  EXPECT_EQ(u->connection_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(u->frame_max, 8192U);
  EXPECT_EQ(u->channel_max, 16);
  EXPECT_EQ(u->vhost, "/");
}

TEST(amqp_url, rejects_bad_input_with_a_clear_message) {
  struct bad_case {
    const char* text;
    const char* message_part;
  };
  const bad_case cases[] = {
      {"http://h", "must start with amqp:// or amqps://"},
      {"", "must start with amqp:// or amqps://"},
      {"amqp://h:0", "port must be a number from 1 to 65535"},
      {"amqp://h:65536", "port must be a number from 1 to 65535"},
      {"amqp://h:12ab", "port must be a number"},
      {"amqp://h:", "port must be a number"},
      {"amqp://h/a/b", "encode it as %2f"},
      {"amqp://u:%zz@h", "bad percent-encoding in password"},
      {"amqp://u%4@h", "bad percent-encoding in user"},
      {"amqp://:pw@h", "empty user name"},
      {"amqp://h/%2", "bad percent-encoding in vhost"},
      {"amqp://[::1", "unterminated '['"},
      {"amqp://[::1]x", "unexpected text after IPv6 host"},
      {"amqp://h?heartbeat=abc", "heartbeat has a bad value"},
      {"amqp://h?frame_max=100", "at least 4096"},
      {"amqp://h?tls=1", "unknown query parameter 'tls'"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(url::parse(c.text, &error)) << c.text;
    EXPECT_NE(error.find(c.message_part), std::string::npos)
        << c.text << " gave \"" << error << "\"";
  }
  EXPECT_FALSE(url::parse("amqp://h:0"));  // the error out-parameter is optional
}

TEST(amqp_url, to_string_leaves_the_password_out) {
  const auto u = url::parse("amqp://alice:s3cret@h:1234/v");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->to_string(), "amqp://alice@h:1234/v");
  EXPECT_EQ(url::parse("amqp://[::1]")->to_string(), "amqp://guest@[::1]:5672/");
}

}  // namespace
}  // namespace sluice::amqp
