#include "sluice/delivery/batch_protocol.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::delivery {
namespace {

using json = nlohmann::json;

TEST(batch_encode, the_documented_shape) {
  const std::string a = R"({"n":1})";
  const std::string b = "[2]";
  const std::vector<batch_item> items = {{"m1", "p1", 1, &a}, {"m2", "", 3, &b}};
  EXPECT_EQ(encode_batch("orders", items),
            R"([{"id":"m1","queue":"orders","partition":"p1","attempt":1,"payload":{"n":1}},)"
            R"({"id":"m2","queue":"orders","partition":"","attempt":3,"payload":[2]}])");
}

TEST(batch_encode, an_empty_batch_is_an_empty_array) {
  EXPECT_EQ(encode_batch("q", {}), "[]");
}

TEST(batch_encode, the_payload_is_embedded_byte_for_byte) {
  // Whitespace, number spellings, key order, escapes and duplicate keys would all change if the
  // payload went through a JSON library on the way.
  const std::string payload =
      "{ \"z\" : 1.50, \"a\":[1e2 , -0.0,\n 12345678901234567890123],\t\"s\":\"\\u00e9\\/\","
      " \"z\": true, \"u\": \"\xc3\xa9\" }";
  const std::vector<batch_item> items = {{"id-1", "p", 2, &payload}};
  const std::string body = encode_batch("q", items);
  const std::string expected_prefix = R"([{"id":"id-1","queue":"q","partition":"p","attempt":2,)"
                                      R"("payload":)";
  ASSERT_EQ(body.substr(0, expected_prefix.size()), expected_prefix);
  EXPECT_EQ(body.substr(expected_prefix.size(), payload.size()), payload);
  EXPECT_EQ(body.substr(expected_prefix.size() + payload.size()), "}]");
  EXPECT_TRUE(json::accept(body));
}

TEST(batch_encode, escapes_ids_partitions_and_the_queue) {
  const std::string payload = "1";
  const std::string id = "a\"b\\c/d";
  const std::string partition = std::string("line\nbreak\ttab\r\x01\x1f\b\f") + "\xc3\xa9";
  const std::vector<batch_item> items = {{id, partition, 1, &payload}};
  const std::string body = encode_batch("q\"x", items);
  EXPECT_NE(body.find(R"("id":"a\"b\\c/d")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("partition":"line\nbreak\ttab\r\u0001\u001f\b\f)"), std::string::npos)
      << body;
  const json doc = json::parse(body);
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["id"], id);
  EXPECT_EQ(doc[0]["partition"], partition);
  EXPECT_EQ(doc[0]["queue"], "q\"x");
  EXPECT_EQ(doc[0]["attempt"], 1);
  EXPECT_EQ(doc[0]["payload"], 1);
}

TEST(batch_encode, a_missing_payload_is_null) {
  const std::string empty;
  const std::vector<batch_item> items = {{"a", "", 1, nullptr}, {"b", "", 1, &empty}};
  const json doc = json::parse(encode_batch("q", items));
  EXPECT_TRUE(doc[0]["payload"].is_null());
  EXPECT_TRUE(doc[1]["payload"].is_null());
}

TEST(batch_encode, many_items_round_trip) {
  std::vector<std::string> payloads;
  for (int i = 0; i < 500; ++i)
    payloads.push_back("{\"i\":" + std::to_string(i) + "}");
  std::vector<batch_item> items;
  for (int i = 0; i < 500; ++i)
    items.push_back({"m" + std::to_string(i), "p" + std::to_string(i % 7), 1, &payloads[i]});
  const json doc = json::parse(encode_batch("q", items));
  ASSERT_EQ(doc.size(), 500u);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(doc[i]["id"], "m" + std::to_string(i));
    EXPECT_EQ(doc[i]["payload"]["i"], i);
  }
}

const std::vector<std::string> ids = {"m1", "m2", "m3"};

std::optional<std::vector<int>> parse(std::string_view body, std::string* why = nullptr,
                                      const std::vector<std::string>& of = ids) {
  return parse_batch_response(body, of, why);
}

TEST(batch_parse, numbers_in_item_order) {
  EXPECT_EQ(parse("[200, 503, 410]"), (std::vector<int>{200, 503, 410}));
  EXPECT_EQ(parse(" [100,599,404] "), (std::vector<int>{100, 599, 404}));
}

TEST(batch_parse, objects_in_any_order) {
  EXPECT_EQ(parse(R"([{"id":"m3","status":500},{"id":"m1","status":200},)"
                  R"({"status":429,"id":"m2"}])"),
            (std::vector<int>{200, 429, 500}));
  // Other fields are allowed (a reason, say).
  EXPECT_EQ(parse(R"([{"id":"m2","status":201,"reason":"ok"},{"id":"m3","status":400},)"
                  R"({"id":"m1","status":202}])"),
            (std::vector<int>{202, 201, 400}));
}

TEST(batch_parse, an_id_sent_twice_is_answered_twice) {
  const std::vector<std::string> twice = {"a", "b", "a"};
  EXPECT_EQ(parse(R"([{"id":"a","status":200},{"id":"b","status":500},{"id":"a","status":404}])",
                  nullptr, twice),
            (std::vector<int>{200, 500, 404}));
  std::string why;
  EXPECT_FALSE(parse(R"([{"id":"a","status":200},{"id":"a","status":500},)"
                     R"({"id":"a","status":404}])",
                     &why, twice));
  EXPECT_NE(why.find("repeats"), std::string::npos) << why;
}

TEST(batch_parse, empty_batch) {
  EXPECT_EQ(parse("[]", nullptr, {}), std::vector<int>{});
}

void expect_rejected(std::string_view body, std::string_view reason) {
  std::string why;
  EXPECT_FALSE(parse(body, &why)) << body;
  EXPECT_NE(why.find(reason), std::string::npos) << body << " -> " << why;
  // `why` is optional.
  EXPECT_FALSE(parse(body, nullptr)) << body;
}

TEST(batch_parse, not_json) {
  expect_rejected("", "not JSON");
  expect_rejected("[200, 200", "not JSON");
  expect_rejected("ok", "not JSON");
  expect_rejected("[200,200,200] trailing", "not JSON");
}

TEST(batch_parse, not_an_array) {
  expect_rejected(R"({"m1":200})", "not a JSON array");
  expect_rejected("200", "not a JSON array");
  expect_rejected("null", "not a JSON array");
}

TEST(batch_parse, wrong_length) {
  expect_rejected("[200, 200]", "2 entries for 3");
  expect_rejected("[200, 200, 200, 200]", "4 entries for 3");
  expect_rejected("[]", "0 entries for 3");
}

TEST(batch_parse, status_out_of_range_or_not_an_integer) {
  expect_rejected("[200, 99, 200]", "entry 1");
  expect_rejected("[200, 200, 600]", "entry 2");
  expect_rejected("[-200, 200, 200]", "entry 0");
  expect_rejected("[200, 200.5, 200]", "entry 1");
  expect_rejected("[200, 200.0, 200]", "entry 1");
  expect_rejected("[200, 18446744073709551615, 200]", "entry 1");
  expect_rejected(R"([{"id":"m1","status":200},{"id":"m2","status":700},{"id":"m3","status":200}])",
                  "entry 1");
  expect_rejected(R"([{"id":"m1","status":"200"},{"id":"m2","status":200},)"
                  R"({"id":"m3","status":200}])",
                  "entry 0");
  expect_rejected(R"([{"id":"m1"},{"id":"m2","status":200},{"id":"m3","status":200}])", "status");
}

TEST(batch_parse, mixed_or_other_entries) {
  expect_rejected(R"([200, {"id":"m2","status":200}, 200])", "entry 1");
  expect_rejected(R"([{"id":"m1","status":200}, 200, {"id":"m3","status":200}])", "entry 1");
  expect_rejected(R"(["200", "200", "200"])", "statuses or objects");
  expect_rejected("[null, null, null]", "statuses or objects");
  expect_rejected("[true, 200, 200]", "statuses or objects");
}

TEST(batch_parse, unknown_id) {
  expect_rejected(R"([{"id":"m1","status":200},{"id":"m9","status":200},)"
                  R"({"id":"m3","status":200}])",
                  "not in the batch");
}

TEST(batch_parse, duplicate_id) {
  expect_rejected(R"([{"id":"m1","status":200},{"id":"m1","status":200},)"
                  R"({"id":"m3","status":200}])",
                  "repeats");
}

TEST(batch_parse, missing_id) {
  expect_rejected(R"([{"id":"m1","status":200},{"status":200},{"id":"m3","status":200}])",
                  "no string \"id\"");
  expect_rejected(R"([{"id":"m1","status":200},{"id":2,"status":200},{"id":"m3","status":200}])",
                  "no string \"id\"");
}

}  // namespace
}  // namespace sluice::delivery
