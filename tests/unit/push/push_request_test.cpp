#include "sluice/push/push_request.hpp"

#include <gtest/gtest.h>

namespace sluice::push {
namespace {

parse_outcome parse(std::string_view body, push_limits limits = {}) {
  return parse_push_request(body, limits);
}

TEST(push_request, parses_items_and_keeps_payload_bytes_exactly) {
  const auto out = parse(R"({"items":[
      {"queue":"orders","partition":"eu","payload":{ "b" : 1,"a":[1.50, 2E3] },
       "namespace":"shop","task":"ship","traceId":"t-1","transactionId":"tx-1"},
      {"queue":"orders","payload":"just a string"}]})");
  ASSERT_TRUE(out.request.has_value()) << out.error_message;
  const auto& items = out.request->items;
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].queue, "orders");
  EXPECT_EQ(items[0].partition, "eu");
  EXPECT_EQ(items[0].payload, R"({ "b" : 1,"a":[1.50, 2E3] })") << "no re-serialization";
  EXPECT_EQ(items[0].namespace_.value(), "shop");
  EXPECT_EQ(items[0].task.value(), "ship");
  EXPECT_EQ(items[0].trace_id.value(), "t-1");
  EXPECT_EQ(items[0].transaction_id.value(), "tx-1");
  EXPECT_EQ(items[1].partition, "Default");
  EXPECT_EQ(items[1].payload, "\"just a string\"");
  EXPECT_FALSE(items[1].transaction_id.has_value());
  EXPECT_FALSE(out.request->qos0.has_value());
}

TEST(push_request, buffer_fields_make_it_qos0_with_defaults_for_the_missing_one) {
  auto out = parse(R"({"items":[{"queue":"q","payload":1}],"bufferMs":250})");
  ASSERT_TRUE(out.request && out.request->qos0);
  EXPECT_EQ(out.request->qos0->buffer_ms, 250);
  EXPECT_EQ(out.request->qos0->buffer_max, 100);
  out = parse(R"({"bufferMax":7,"items":[{"queue":"q","payload":1}]})");
  ASSERT_TRUE(out.request && out.request->qos0);
  EXPECT_EQ(out.request->qos0->buffer_max, 7);
  out = parse(R"({"items":[{"queue":"q","payload":1}],"bufferMs":-1})");
  EXPECT_EQ(out.error_code, "invalid_request");
  out = parse(R"({"items":[{"queue":"q","payload":1}],"bufferMax":1.5})");
  EXPECT_EQ(out.error_code, "invalid_request");
  EXPECT_NE(out.error_message.find("bufferMax"), std::string::npos);
}

TEST(push_request, malformed_json_is_invalid_json) {
  for (const char* body :
       {"", "[", "{", R"({"items":[{"queue":"q","payload":}]})", R"({"items":[]} x)",
        R"({"items":[{"queue":"q","payload":1}],"bufferMs":)", R"({"bufferMs":abc})",
        "{\"items\":[{\"queue\":\"q\",\"payload\":\"\xff\"}]}"}) {
    const auto out = parse(body);
    EXPECT_FALSE(out.request.has_value()) << body;
    EXPECT_EQ(out.error_code, "invalid_json") << body;
  }
}

TEST(push_request, structural_problems_are_invalid_request) {
  for (const char* body :
       {"{}", R"({"items":[]})", R"({"items":{}})",
        R"({"items":[{"queue":"q","payload":1}],"x":1})",
        // valid JSON of the wrong shape
        "[]", "null", "5", R"("x")", R"({"items":[{"queue":"q","payload":1}],"bufferMs":"5"})",
        R"({"items":[{"queue":"q","payload":1}],"bufferMs":1e999})",
        // a repeated key would be merged or overwritten silently
        R"({"items":[{"queue":"q","payload":1}],"items":[{"queue":"q","payload":2}]})",
        R"({"items":[{"queue":"q","payload":1}],"bufferMs":5,"bufferMs":6})"}) {
    const auto out = parse(body);
    EXPECT_EQ(out.error_code, "invalid_request") << body;
    EXPECT_FALSE(out.request.has_value()) << body;
  }
  EXPECT_NE(parse(R"({"items":[],"items":[]})").error_message.find("\"items\" given twice"),
            std::string::npos);
}

TEST(push_request, an_item_that_is_not_an_object_is_an_item_problem) {
  const auto out = parse(R"({"items":[{"queue":"q","payload":1},1,null,[]]})");
  EXPECT_EQ(out.error_code, "invalid_items");
  ASSERT_EQ(out.item_errors.size(), 3u);
  EXPECT_EQ(out.item_errors[0].index, 1u);
  EXPECT_EQ(out.item_errors[0].message, "an item must be a JSON object");
}

TEST(push_request, payloads_nest_up_to_64_levels) {
  const auto nested = [](int levels) {
    return std::string(static_cast<std::size_t>(levels), '[') +
           std::string(static_cast<std::size_t>(levels), ']');
  };
  auto out = parse(R"({"items":[{"queue":"q","payload":)" + nested(64) + "}]}");
  EXPECT_TRUE(out.request.has_value()) << out.error_message;
  out =
      parse(R"({"items":[{"queue":"q","payload":1},{"queue":"q","payload":)" + nested(65) + "}]}");
  EXPECT_EQ(out.error_code, "invalid_items") << "valid JSON, over a limit: not invalid_json";
  ASSERT_EQ(out.item_errors.size(), 1u);
  EXPECT_EQ(out.item_errors[0].index, 1u);
  EXPECT_EQ(out.item_errors[0].field, "payload");
  EXPECT_NE(out.item_errors[0].message.find("nesting deeper than 64 levels"), std::string::npos);
}

TEST(push_request, huge_bodies_of_bad_items_give_a_bounded_answer) {
  // 3 problems in each of 50,000 empty or odd items: counted, the first 100 listed.
  std::string body = R"({"items":[)";
  for (int i = 0; i < 50'000; ++i)
    body += i ? ",{}" : "{}";
  body += "]}";
  push_limits many;
  many.max_items = 100'000;
  auto out = parse(body, many);
  EXPECT_EQ(out.error_code, "invalid_items");
  EXPECT_EQ(out.item_errors.size(), max_listed_item_errors);
  EXPECT_EQ(out.item_error_count, 100'000u);
  EXPECT_NE(out.error_message.find("100000 problem(s) in items (the first 100 listed)"),
            std::string::npos)
      << out.error_message;
  // One item with 50,000 unknown keys: each key is checked once, not against all others.
  body = R"({"items":[{"queue":"q","payload":1)";
  for (int i = 0; i < 50'000; ++i)
    body += ",\"k" + std::to_string(i) + "\":0";
  body += "}]}";
  out = parse(body);
  EXPECT_EQ(out.item_error_count, 50'000u);
  EXPECT_EQ(out.item_errors.size(), max_listed_item_errors);
  // Items past max_items are only checked to be JSON.
  body = R"({"items":[)";
  for (int i = 0; i < 5'000; ++i)
    body += i ? ",{}" : "{}";
  body += "]}";
  out = parse(body);
  EXPECT_EQ(out.error_code, "invalid_request");
  EXPECT_NE(out.error_message.find("more than 1000 items"), std::string::npos);
}

TEST(push_request, every_bad_item_field_is_reported_and_nothing_is_accepted) {
  const auto out = parse(R"({"items":[
      {"queue":"ok","payload":1},
      {"payload":1},
      {"queue":"bad name!","payload":1,"partition":""},
      {"queue":"q","traceId":"line\nbreak","transactionId":5},
      {"queue":"q","payload":1,"colour":"red","queue":"again"}]})");
  EXPECT_FALSE(out.request.has_value());
  EXPECT_EQ(out.error_code, "invalid_items");
  auto has = [&](std::size_t index, const std::string& field) {
    for (const auto& e : out.item_errors) {
      if (e.index == index && e.field == field)
        return true;
    }
    return false;
  };
  EXPECT_TRUE(has(1, "queue"));
  EXPECT_TRUE(has(2, "queue"));
  EXPECT_TRUE(has(2, "partition"));
  EXPECT_TRUE(has(3, "traceId"));
  EXPECT_TRUE(has(3, "transactionId"));
  EXPECT_TRUE(has(3, "payload"));
  EXPECT_TRUE(has(4, "colour"));
  EXPECT_TRUE(has(4, "queue")) << "duplicate key";
  EXPECT_FALSE(has(0, "queue"));
}

TEST(push_request, limits_on_items_and_payload_size) {
  push_limits limits;
  limits.max_items = 2;
  limits.max_payload_bytes = 10;
  auto out = parse(
      R"({"items":[{"queue":"q","payload":1},{"queue":"q","payload":2},{"queue":"q","payload":3}]})",
      limits);
  EXPECT_EQ(out.error_code, "invalid_request");
  EXPECT_NE(out.error_message.find("more than 2 items"), std::string::npos);
  out = parse(R"({"items":[{"queue":"q","payload":"0123456789abcdef"}]})", limits);
  EXPECT_EQ(out.error_code, "invalid_items");
  ASSERT_EQ(out.item_errors.size(), 1u);
  EXPECT_EQ(out.item_errors[0].field, "payload");
}

TEST(push_request, names_have_length_and_charset_limits) {
  const std::string long_name(129, 'a');
  auto out = parse(R"({"items":[{"queue":")" + long_name + R"(","payload":1}]})");
  EXPECT_EQ(out.error_code, "invalid_items");
  out = parse(R"({"items":[{"queue":"a.b_c-d:e","payload":1}]})");
  EXPECT_TRUE(out.request.has_value());
  out = parse(R"({"items":[{"queue":"q","payload":1,"transactionId":"\u00e9t\u00e9 2024 ✓"}]})");
  ASSERT_TRUE(out.request.has_value()) << out.error_message;
  EXPECT_EQ(out.request->items[0].transaction_id.value(), "\xc3\xa9t\xc3\xa9 2024 ✓");
  // C1 controls (here U+0085, NEXT LINE) are control characters too; U+00A0 is not.
  out = parse(R"({"items":[{"queue":"q","payload":1,"transactionId":"a\u0085b"}]})");
  EXPECT_EQ(out.error_code, "invalid_items");
  out = parse(R"({"items":[{"queue":"q","payload":1,"transactionId":"a\u00a0b"}]})");
  EXPECT_TRUE(out.request.has_value()) << out.error_message;
}

}  // namespace
}  // namespace sluice::push
