#include "sluice/http/response_wire.hpp"

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

namespace sluice::http {
namespace {

namespace bhttp = boost::beast::http;

// Parses the bytes with Beast's own parser: the serializer must produce what a client reads.
bhttp::response<bhttp::string_body> parse(const std::string& wire) {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.eager(true);
  boost::beast::error_code ec;
  const auto used = parser.put(boost::asio::buffer(wire), ec);
  EXPECT_FALSE(ec) << ec.message() << "\n" << wire;
  EXPECT_EQ(used, wire.size()) << wire;
  EXPECT_TRUE(parser.is_done()) << wire;
  return parser.release();
}

TEST(response_wire, created_with_body_headers_and_keep_alive) {
  response r = response::json(201, R"({"pushed":true})");
  r.with_header("Retry-After", "1");
  std::string wire;
  serialize_response(r, 11, true, "req-1", wire);
  EXPECT_EQ(wire.rfind("HTTP/1.1 201 Created\r\n", 0), 0u) << wire;
  const auto parsed = parse(wire);
  EXPECT_EQ(parsed.result_int(), 201u);
  EXPECT_EQ(parsed.body(), R"({"pushed":true})");
  EXPECT_EQ(parsed[bhttp::field::content_type], "application/json");
  EXPECT_EQ(parsed["X-Request-Id"], "req-1");
  EXPECT_EQ(parsed["Retry-After"], "1");
  EXPECT_EQ(parsed[bhttp::field::server], "sluice/" SLUICE_VERSION);
  EXPECT_TRUE(parsed.keep_alive());
}

TEST(response_wire, http11_close_and_http10_keep_alive_are_explicit) {
  std::string wire;
  serialize_response(response::json(404, "{}"), 11, false, "x", wire);
  EXPECT_FALSE(parse(wire).keep_alive());
  EXPECT_NE(wire.find("Connection: close\r\n"), std::string::npos);

  serialize_response(response::json(200, "{}"), 10, true, "x", wire);
  EXPECT_EQ(wire.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << wire;
  EXPECT_TRUE(parse(wire).keep_alive());
  serialize_response(response::json(200, "{}"), 10, false, "x", wire);
  EXPECT_FALSE(parse(wire).keep_alive());
}

TEST(response_wire, no_content_has_no_body_or_length) {
  std::string wire;
  serialize_response(response::json(204, ""), 11, true, "x", wire);
  EXPECT_EQ(wire.find("Content-Length"), std::string::npos) << wire;
  EXPECT_EQ(wire.substr(wire.size() - 4), "\r\n\r\n");
  EXPECT_EQ(parse(wire).result_int(), 204u);
}

TEST(response_wire, reuses_the_buffer_and_replaces_its_content) {
  std::string wire;
  serialize_response(response::json(200, std::string(4000, 'a')), 11, true, "x", wire);
  const auto capacity = wire.capacity();
  serialize_response(response::json(200, "{}"), 11, true, "y", wire);
  EXPECT_EQ(wire.capacity(), capacity);
  EXPECT_EQ(parse(wire).body(), "{}");
}

}  // namespace
}  // namespace sluice::http
