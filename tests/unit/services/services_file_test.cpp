#include "sluice/services/services_file.hpp"

#include <gtest/gtest.h>

namespace sluice::services {
namespace {

file_error error_of(std::string_view text) {
  auto r = parse_services_file(text, service_defaults{});
  if (auto* e = std::get_if<file_error>(&r))
    return *e;
  ADD_FAILURE() << "accepted: " << text;
  return {};
}

TEST(services_file, parses_services_with_their_schedules_in_file_order) {
  const auto r = parse_services_file(R"({"services":[
    {"name":"payments","flavours":[{"name":"std","url":"http://payments-std.shop:8080"},
                                    {"name":"green"}],
     "schedule":{"flavours":[{"name":"green","weight":70},{"name":"std","weight":30}],
                 "validUntil":"2030-01-01T00:00:00Z"}},
    {"name":"orders","namespace":"shop","flavours":[{"name":"std"}]}]})",
                                     service_defaults{});
  ASSERT_TRUE(std::holds_alternative<std::vector<service>>(r)) << std::get<file_error>(r).message;
  const auto& s = std::get<std::vector<service>>(r);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "payments");
  EXPECT_EQ(s[0].source, service_source::file);
  ASSERT_TRUE(s[0].traffic.has_value());
  EXPECT_EQ(s[0].traffic->flavours.size(), 2u);
  EXPECT_EQ(s[1].name, "orders");
  EXPECT_EQ(s[1].namespace_, "shop");
  EXPECT_FALSE(s[1].traffic.has_value());
}

TEST(services_file, an_empty_list_is_valid) {
  const auto r = parse_services_file(R"({"services":[]})", service_defaults{});
  ASSERT_TRUE(std::holds_alternative<std::vector<service>>(r));
  EXPECT_TRUE(std::get<std::vector<service>>(r).empty());
}

TEST(services_file, a_key_repeated_in_one_object_is_refused) {
  EXPECT_EQ(
      error_of(
          R"({"services":[{"name":"a","flavours":[{"name":"std"}],"timeoutMs":1,"timeoutMs":2}]})")
          .field,
      "timeoutMs");
  EXPECT_EQ(error_of(R"({"services":[],"services":[]})").field, "services");
  // The same key in two objects is fine.
  const auto r = parse_services_file(
      R"({"services":[{"name":"a","flavours":[{"name":"std"}]},{"name":"b","flavours":[{"name":"std"}]}]})",
      service_defaults{});
  EXPECT_TRUE(std::holds_alternative<std::vector<service>>(r));
}

TEST(services_file, names_the_field_of_what_is_wrong) {
  EXPECT_EQ(error_of("{").field, "");
  EXPECT_EQ(error_of("[]").field, "");
  EXPECT_EQ(error_of(R"({})").field, "services");
  EXPECT_EQ(error_of(R"({"services":{}})").field, "services");
  EXPECT_EQ(error_of(R"({"services":[],"extra":1})").field, "extra");
  EXPECT_EQ(error_of(R"({"services":[1]})").field, "services[0]");
  EXPECT_EQ(error_of(R"({"services":[{"flavours":[{"name":"std"}]}]})").field, "services[0].name");
  EXPECT_EQ(error_of(R"({"services":[{"name":"a b","flavours":[{"name":"std"}]}]})").field,
            "services[0].name");
  EXPECT_EQ(
      error_of(
          R"({"services":[{"name":"a","flavours":[{"name":"std"}]},{"name":"a","flavours":[{"name":"std"}]}]})")
          .field,
      "services[1].name");
  EXPECT_EQ(
      error_of(
          R"({"services":[{"name":"a","flavours":[{"name":"std"}]},{"name":"b","flavours":[{"name":"std","url":"ftp://x"}]}]})")
          .field,
      "services[1].flavours[0].url");
  EXPECT_EQ(
      error_of(R"({"services":[{"name":"a","flavours":[{"name":"std"}],"timeoutMs":-1}]})").field,
      "services[0].timeoutMs");
  EXPECT_EQ(error_of(R"({"services":[{"name":"a","flavours":[{"name":"std"}],"colour":1}]})").field,
            "services[0].colour");
}

}  // namespace
}  // namespace sluice::services
