#include "sluice/ingest/row_builder.hpp"

#include <gtest/gtest.h>

namespace sluice::ingest {
namespace {

row_options options(std::optional<std::string> partition = {}, std::optional<std::string> time = {},
                    time_format format = time_format::rfc3339) {
  row_options o;
  o.queue = "q";
  o.partition_field = std::move(partition);
  o.time_field = std::move(time);
  o.format = format;
  o.max_row_bytes = 200;
  return o;
}

ndjson_line line(std::size_t n, std::string_view text) {
  return {n, text, false};
}

TEST(row_builder, ndjson_line_is_the_payload_as_written) {
  row_builder b(options());
  message m;
  ASSERT_FALSE(b.from_ndjson(line(7, "  {\"a\": [1, 2.50]}\t"), m));
  EXPECT_EQ(m.payload, "{\"a\": [1, 2.50]}");
  EXPECT_EQ(m.queue, "q");
  EXPECT_EQ(m.partition, "Default");
  EXPECT_FALSE(m.event_us);
  EXPECT_FALSE(m.transaction_id);
  // Any JSON value is a row when no field is asked for.
  ASSERT_FALSE(b.from_ndjson(line(8, "42"), m));
  EXPECT_EQ(m.payload, "42");
}

TEST(row_builder, ndjson_bad_rows) {
  row_builder b(options());
  message m;
  EXPECT_EQ(b.from_ndjson(line(1, "{\"a\":"), m).value().rfind("not JSON", 0), 0u);
  EXPECT_EQ(b.from_ndjson(line(1, "{} {}"), m).value().rfind("not JSON", 0), 0u);
  EXPECT_EQ(b.from_ndjson(line(1, "\"\xff\""), m).value().rfind("not JSON", 0), 0u);
  EXPECT_EQ(b.from_ndjson({1, {}, true}, m), "line longer than 200 bytes");
}

TEST(row_builder, ndjson_partition_and_time_fields) {
  row_builder b(options("device", "ts"));
  message m;
  ASSERT_FALSE(b.from_ndjson(
      line(3, R"({"x":{"device":"inner"},"device":"d-1","ts":"1970-01-01T00:00:01Z"})"), m));
  EXPECT_EQ(m.partition, "d-1");
  EXPECT_EQ(m.event_us, 1'000'000);
  ASSERT_FALSE(b.from_ndjson(line(4, R"({"device":17,"ts":"1970-01-01T00:00:02Z"})"), m));
  EXPECT_EQ(m.partition, "17");
  // Escapes in keys and values are decoded before matching.
  ASSERT_FALSE(
      b.from_ndjson(line(5, R"({"dev\u0069ce":"d\u002d2","ts":"1970-01-01T00:00:03Z"})"), m));
  EXPECT_EQ(m.partition, "d-2");
}

TEST(row_builder, ndjson_field_errors) {
  row_builder b(options("device", "ts", time_format::epoch_ms));
  message m;
  EXPECT_EQ(b.from_ndjson(line(1, R"([1])"), m),
            "not a JSON object (partition_field and time_field name members of one)");
  EXPECT_EQ(b.from_ndjson(line(1, R"({"ts":1})"), m), "partition field 'device' is missing");
  EXPECT_EQ(b.from_ndjson(line(1, R"({"device":"a"})"), m), "time field 'ts' is missing");
  EXPECT_EQ(b.from_ndjson(line(1, R"({"device":null,"ts":1})"), m),
            "partition field 'device': expected a string or a number");
  EXPECT_EQ(b.from_ndjson(line(1, R"({"device":"a b","ts":1})"), m),
            "partition field 'device': must be 1 to 128 bytes of letters, digits and . _ : -");
  EXPECT_EQ(b.from_ndjson(line(1, R"({"device":"a","ts":true})"), m),
            "time field 'ts': expected a string or a number");
  EXPECT_EQ(b.from_ndjson(line(1, R"({"device":"a","ts":"soon"})"), m),
            "time field 'ts': 'soon' is not a time in milliseconds since the epoch");
  ASSERT_FALSE(b.from_ndjson(line(1, R"({"device":"a","ts":1500.5})"), m));
  EXPECT_EQ(m.event_us, 1'500'500);
  EXPECT_EQ(b.from_ndjson(line(1, R"({})"), m), "partition field 'device' is missing");
}

TEST(row_builder, idempotency_key_names_each_line) {
  auto o = options();
  o.idempotency_key = "upload-1";
  row_builder b(o);
  message m;
  ASSERT_FALSE(b.from_ndjson(line(12, "{}"), m));
  EXPECT_EQ(m.transaction_id,
            "upload-1\x1f"
            "12");
}

csv_record record(std::size_t line, std::vector<csv_field> fields, std::string error = {}) {
  return {line, std::move(fields), std::move(error)};
}

TEST(row_builder, csv_rows_become_objects) {
  row_builder b(options("id", "t", time_format::epoch_s));
  EXPECT_FALSE(b.has_csv_header());
  ASSERT_FALSE(b.set_csv_header(record(1, {{"id", false}, {"t", true}, {"na\"me", false}})));
  EXPECT_TRUE(b.has_csv_header());
  message m;
  ASSERT_FALSE(b.from_csv(record(2, {{"7", false}, {"1.5", false}, {"", false}}), m));
  EXPECT_EQ(m.payload, R"({"id":7,"t":1.5,"na\"me":null})");
  EXPECT_EQ(m.partition, "7");
  EXPECT_EQ(m.event_us, 1'500'000);
  ASSERT_FALSE(b.from_csv(record(3, {{"a", true}, {"2", true}, {"0001", false}}), m));
  EXPECT_EQ(m.payload, R"({"id":"a","t":"2","na\"me":"0001"})");
  EXPECT_EQ(m.event_us, 2'000'000);
}

TEST(row_builder, csv_header_errors) {
  EXPECT_EQ(row_builder(options()).set_csv_header(record(1, {{"a", false}, {"a", false}})),
            "header: column 'a' appears twice");
  EXPECT_EQ(row_builder(options("p")).set_csv_header(record(1, {{"a", false}})),
            "header: no column 'p' (partition_field)");
  EXPECT_EQ(row_builder(options({}, "t")).set_csv_header(record(1, {{"a", false}})),
            "header: no column 't' (time_field)");
  EXPECT_EQ(row_builder(options()).set_csv_header(record(2, {{"a", false}}, "bad")),
            "header (line 2): bad");
  EXPECT_EQ(row_builder(options()).set_csv_header(record(1, {{"\xff", false}})),
            "header: column 1 is not UTF-8");
}

TEST(row_builder, csv_row_errors) {
  row_builder b(options("p"));
  ASSERT_FALSE(b.set_csv_header(record(1, {{"p", false}, {"v", false}})));
  message m;
  EXPECT_EQ(b.from_csv(record(2, {{"a", false}}), m), "expected 2 fields, got 1");
  EXPECT_EQ(b.from_csv(record(2, {{"a", false}, {"\xc3", false}}), m), "not UTF-8");
  EXPECT_EQ(b.from_csv(record(2, {{"a", false}, {"b", false}}, "broken"), m), "broken");
  EXPECT_EQ(b.from_csv(record(2, {{"", false}, {"b", false}}), m),
            "partition field 'p': must be 1 to 128 bytes of letters, digits and . _ : -");
  EXPECT_EQ(b.from_csv(record(2, {{"a", false}, {std::string(190, 'x'), false}}), m),
            "row longer than 200 bytes as JSON");
}

}  // namespace
}  // namespace sluice::ingest
