#include "sluice/http/caller_checks.hpp"

#include <memory>

#include <gtest/gtest.h>

namespace sluice::http {
namespace {

request with_caller(std::vector<std::string> prefixes) {
  request r;
  r.remote_address = "10.0.0.7";
  auto who = std::make_shared<caller>();
  who->name = "tele-ops";
  who->admin = true;
  who->prefixes = std::move(prefixes);
  r.caller = std::move(who);
  return r;
}

TEST(caller_checks, without_a_caller_everything_is_covered) {
  request r;
  EXPECT_FALSE(refuse_uncovered(r, "billing"));
  EXPECT_FALSE(refuse_unfiltered(r, std::nullopt, "queue"));
}

TEST(caller_checks, prefixes_decide_what_is_covered) {
  const auto r = with_caller({"tele-"});
  EXPECT_FALSE(refuse_uncovered(r, "tele-1"));
  const auto refused = refuse_uncovered(r, "billing");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  EXPECT_NE(refused->body.find(R"("code":"forbidden")"), std::string::npos);
  EXPECT_NE(refused->body.find("billing"), std::string::npos);
}

TEST(caller_checks, a_caller_with_prefixes_must_name_a_covered_filter) {
  const auto limited = with_caller({"tele-"});
  const auto refused = refuse_unfiltered(limited, std::nullopt, "queue");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  EXPECT_NE(refused->body.find("queue="), std::string::npos);
  EXPECT_TRUE(refuse_unfiltered(limited, std::string("billing"), "queue"));
  EXPECT_FALSE(refuse_unfiltered(limited, std::string("tele-a"), "queue"));
  const auto unlimited = with_caller({});
  EXPECT_FALSE(refuse_unfiltered(unlimited, std::nullopt, "queue"));
}

TEST(caller_checks, the_actor_is_the_token_name_else_the_address) {
  EXPECT_EQ(actor_of(with_caller({})), "tele-ops");
  request r;
  r.remote_address = "10.0.0.7";
  EXPECT_EQ(actor_of(r), "10.0.0.7");
  EXPECT_EQ(actor_of(request{}), "unknown");
}

}  // namespace
}  // namespace sluice::http
