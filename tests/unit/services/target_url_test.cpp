#include "sluice/services/target_url.hpp"

#include <gtest/gtest.h>

namespace sluice::services {
namespace {

TEST(target_url, splits_host_port_and_path) {
  auto u = parse_http_url("http://payments-std.shop:8080/api/v1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "payments-std.shop");
  EXPECT_EQ(u->port, 8080);
  EXPECT_TRUE(u->port_given);
  EXPECT_EQ(u->path, "/api/v1");

  u = parse_http_url("http://10.0.0.7");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "10.0.0.7");
  EXPECT_EQ(u->port, 80);
  EXPECT_FALSE(u->port_given);
  EXPECT_EQ(u->path, "");

  u = parse_http_url("http://[::1]:9000/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->path, "/");

  EXPECT_TRUE(parse_http_url("http://h/a%20b/c;v=1"));
}

TEST(target_url, refuses_what_is_not_an_absolute_http_url) {
  for (const char* bad : {"",
                          "payments:8080",
                          "/relative",
                          "https://secure.example",
                          "ftp://x",
                          "http://",
                          "http://:80",
                          "http://host:0",
                          "http://host:65536",
                          "http://host:8o",
                          "http://host:",
                          "http://user:pw@host",
                          "http://host/a?b=1",
                          "http://host/#frag",
                          "http://ho st",
                          "http://host/a b",
                          "http://host/%zz",
                          "http://host/%4",
                          "http://[::1",
                          "http://[]",
                          "http://[::1]x",
                          "HTTP://upper"}) {
    std::string why;
    EXPECT_FALSE(parse_http_url(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

}  // namespace
}  // namespace sluice::services

namespace sluice::services {
namespace {

TEST(target_url, keeps_a_query_only_when_asked_to) {
  EXPECT_FALSE(parse_http_url("http://h/a?b=c"));
  auto u = parse_http_url_with_query("http://h:81/a?b=c&d=%20/?");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 81);
  EXPECT_EQ(u->path, "/a?b=c&d=%20/?");
  u = parse_http_url_with_query("http://h?x=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->path, "/?x=1");
  EXPECT_EQ(parse_http_url_with_query("http://h/a")->path, "/a");
  std::string why;
  EXPECT_FALSE(parse_http_url_with_query("http://h/a?b#c", &why));
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(parse_http_url_with_query("http://h/a?b c"));
  EXPECT_FALSE(parse_http_url_with_query("http://h/a?%zz"));
}

}  // namespace
}  // namespace sluice::services
