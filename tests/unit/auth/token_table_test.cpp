#include "sluice/auth/token_table.hpp"

#include <fstream>

#include <gtest/gtest.h>

namespace sluice::auth {
namespace {

std::string hex(const token_digest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : d) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string entry(const std::string& name, const std::string& token, const std::string& rest) {
  return R"({"name":")" + name + R"(","sha256":")" + hex(sha256_of(token)) + "\"" + rest + "}";
}

void expect_refused(const std::string& text, const std::string& where) {
  try {
    (void)token_table::parse(text);
    ADD_FAILURE() << "accepted: " << text;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(where), std::string::npos)
        << "message: " << e.what() << "\nexpected it to contain: " << where;
  }
}

TEST(token_table, sha256_is_the_hex_sha256sum_prints) {
  EXPECT_EQ(hex(sha256_of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256_of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(token_table, finds_the_caller_of_each_token_with_roles_and_prefixes) {
  const auto table = token_table::parse(
      R"({"tokens":[)" + entry("reader", "r-token", R"(,"roles":["read"])") + "," +
      entry("pusher", "w-token", R"(,"roles":["write"],"prefixes":["telemetry-","dev."])") + "," +
      entry("boss", "a-token", R"(,"roles":["admin"],"prefixes":[])") + "]}");
  EXPECT_EQ(table.size(), 3u);
  const auto reader = table.find(sha256_of("r-token"));
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->name, "reader");
  EXPECT_TRUE(reader->may(http::access::read));
  EXPECT_FALSE(reader->may(http::access::write));
  EXPECT_FALSE(reader->may(http::access::admin));
  EXPECT_TRUE(reader->covers("anything"));

  const auto pusher = table.find(sha256_of("w-token"));
  ASSERT_TRUE(pusher);
  EXPECT_TRUE(pusher->may(http::access::write));
  EXPECT_FALSE(pusher->may(http::access::read));
  EXPECT_TRUE(pusher->covers("telemetry-eu"));
  EXPECT_TRUE(pusher->covers("dev.x"));
  EXPECT_FALSE(pusher->covers("billing"));

  const auto boss = table.find(sha256_of("a-token"));
  ASSERT_TRUE(boss);
  EXPECT_TRUE(boss->may(http::access::read));
  EXPECT_TRUE(boss->may(http::access::write));
  EXPECT_TRUE(boss->may(http::access::admin));
  EXPECT_TRUE(boss->covers("billing"));

  EXPECT_FALSE(table.find(sha256_of("r-token ")));
  EXPECT_FALSE(table.find(sha256_of("")));
}

TEST(token_table, accepts_upper_case_hex_and_an_empty_list) {
  std::string upper = hex(sha256_of("t"));
  for (auto& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const auto table = token_table::parse(R"({"tokens":[{"name":"n","sha256":")" + upper +
                                        R"(","roles":["read"]}]})");
  EXPECT_TRUE(table.find(sha256_of("t")));
  EXPECT_EQ(token_table::parse(R"({"tokens":[]})").size(), 0u);
}

TEST(token_table, refuses_each_malformed_file_naming_the_place) {
  expect_refused("", "not valid JSON");
  expect_refused("{\"tokens\":[", "not valid JSON");
  expect_refused("[]", "expected an object");
  expect_refused("{}", "tokens: expected an array");
  expect_refused(R"({"tokens":{}})", "tokens: expected an array");
  expect_refused(R"({"tokens":[],"extra":1})", "unknown field \"extra\"");
  expect_refused(R"({"tokens":[1]})", "tokens[0]: expected an object");
  expect_refused(R"({"tokens":[)" + entry("a", "x", R"(,"roles":["read"],"role":"x")") + "]}",
                 "tokens[0]: unknown field \"role\"");
  expect_refused(R"({"tokens":[{"sha256":")" + hex(sha256_of("x")) + R"(","roles":["read"]}]})",
                 "tokens[0].name");
  expect_refused(R"({"tokens":[)" + entry("", "x", R"(,"roles":["read"])") + "]}",
                 "tokens[0].name");
  expect_refused(R"({"tokens":[{"name":"a","roles":["read"]}]})", "tokens[0].sha256: missing");
  expect_refused(R"({"tokens":[{"name":"a","sha256":"abc","roles":["read"]}]})",
                 "tokens[0].sha256: expected 64 hex digits");
  expect_refused(
      R"({"tokens":[{"name":"a","sha256":")" + std::string(64, 'g') + R"(","roles":["read"]}]})",
      "tokens[0].sha256: expected hex digits only");
  expect_refused(R"({"tokens":[{"name":"a","sha256":7,"roles":["read"]}]})", "tokens[0].sha256");
  expect_refused(R"({"tokens":[)" + entry("a", "x", "") + "]}", "tokens[0].roles");
  expect_refused(R"({"tokens":[)" + entry("a", "x", R"(,"roles":[])") + "]}", "tokens[0].roles");
  expect_refused(R"({"tokens":[)" + entry("a", "x", R"(,"roles":"read")") + "]}",
                 "tokens[0].roles");
  expect_refused(R"({"tokens":[)" + entry("a", "x", R"(,"roles":["read","rw"])") + "]}",
                 "tokens[0].roles[1]: unknown role \"rw\"");
  expect_refused(R"({"tokens":[)" + entry("a", "x", R"(,"roles":["read"],"prefixes":"q")") + "]}",
                 "tokens[0].prefixes");
  expect_refused(R"({"tokens":[)" + entry("a", "x", R"(,"roles":["read"],"prefixes":[""])") + "]}",
                 "tokens[0].prefixes[0]");
  expect_refused(R"({"tokens":[)" + entry("a", "x", R"(,"roles":["read"])") + "," +
                     entry("a", "y", R"(,"roles":["read"])") + "]}",
                 "tokens[1].name: \"a\" is the name of an earlier entry");
  expect_refused(R"({"tokens":[)" + entry("a", "x", R"(,"roles":["read"])") + "," +
                     entry("b", "x", R"(,"roles":["read"])") + "]}",
                 "tokens[1].sha256: the same token");
}

TEST(token_table, load_names_the_file) {
  try {
    (void)token_table::load("/nonexistent/tokens.json");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("AUTH_TOKENS_FILE /nonexistent/tokens.json"),
              std::string::npos);
  }
  const std::string path = testing::TempDir() + "/token_table_test.json";
  std::ofstream(path) << R"({"tokens":[{"name":"a"}]})";
  try {
    (void)token_table::load(path);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": tokens[0].roles"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace sluice::auth
