#include "sluice/query/query_params.hpp"

#include "sluice/core/rfc3339.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::query {
namespace {

http::request with_query(std::string query) {
  http::request r;
  r.method = "GET";
  r.query = std::move(query);
  return r;
}

const page_limits limits{100, 1000};

// The error's code and message of a refused parameter set.
template <typename T>
std::pair<std::string, std::string> refusal(const std::variant<T, bad_parameter>& v) {
  if (!std::holds_alternative<bad_parameter>(v))
    return {"accepted", ""};
  const auto& r = std::get<bad_parameter>(v).answer;
  EXPECT_EQ(r.status, 400);
  const auto body = nlohmann::json::parse(r.body);
  return {body["error"]["code"], body["error"]["message"]};
}

TEST(query_params, defaults) {
  const auto p = read_paging(with_query(""), limits);
  ASSERT_TRUE(std::holds_alternative<paging>(p));
  EXPECT_EQ(std::get<paging>(p).limit, 100u);
  EXPECT_EQ(std::get<paging>(p).page, 1u);
  EXPECT_FALSE(std::get<paging>(p).page_given);
  EXPECT_EQ(std::get<paging>(p).sort, sort_order::asc);
  EXPECT_FALSE(std::get<paging>(p).cursor);
}

TEST(query_params, limit_is_capped_by_the_setting) {
  EXPECT_EQ(std::get<paging>(read_paging(with_query("limit=1000"), limits)).limit, 1000u);
  const auto [code, message] = refusal(read_paging(with_query("limit=1001"), limits));
  EXPECT_EQ(code, "invalid_limit");
  EXPECT_EQ(message.rfind("limit ", 0), 0u) << message;
  EXPECT_EQ(refusal(read_paging(with_query("limit=0"), limits)).first, "invalid_limit");
  EXPECT_EQ(refusal(read_paging(with_query("limit=-1"), limits)).first, "invalid_limit");
  EXPECT_EQ(refusal(read_paging(with_query("limit=1e2"), limits)).first, "invalid_limit");
}

TEST(query_params, sort_names_its_parameter) {
  EXPECT_EQ(std::get<paging>(read_paging(with_query("sort=desc"), limits)).sort, sort_order::desc);
  const auto [code, message] = refusal(read_paging(with_query("sort=DESC"), limits));
  EXPECT_EQ(code, "invalid_parameter");
  EXPECT_EQ(message.rfind("sort ", 0), 0u) << message;
}

TEST(query_params, page_is_bounded_by_the_rows_it_skips) {
  // limit 100: pages 1..101 skip at most 10,000 rows.
  EXPECT_EQ(std::get<paging>(read_paging(with_query("page=101"), limits)).page, 101u);
  const auto [code, message] = refusal(read_paging(with_query("page=102"), limits));
  EXPECT_EQ(code, "invalid_parameter");
  EXPECT_EQ(message.rfind("page ", 0), 0u) << message;
  EXPECT_EQ(std::get<paging>(read_paging(with_query("page=11&limit=1000"), limits)).page, 11u);
  EXPECT_EQ(refusal(read_paging(with_query("page=12&limit=1000"), limits)).first,
            "invalid_parameter");
  EXPECT_EQ(refusal(read_paging(with_query("page=0"), limits)).first, "invalid_parameter");
  EXPECT_EQ(refusal(read_paging(with_query("page=x"), limits)).first, "invalid_parameter");
}

TEST(query_params, page_and_cursor_exclude_each_other) {
  const auto [code, message] = refusal(read_paging(with_query("page=2&cursor=abc"), limits));
  EXPECT_EQ(code, "invalid_parameter");
  EXPECT_EQ(message.rfind("page ", 0), 0u) << message;
}

TEST(query_params, times_are_rfc3339_or_unix_ms) {
  const auto f = read_message_filter(
      with_query("start_time=2026-12-01T01:00:00%2B01:00&end_time=1796083200001"));
  ASSERT_TRUE(std::holds_alternative<message_filter>(f));
  EXPECT_EQ(*std::get<message_filter>(f).start_us, 1'796'083'200'000'000);
  EXPECT_EQ(*std::get<message_filter>(f).end_us, 1'796'083'200'001'000);
  const auto [code, message] = refusal(read_message_filter(with_query("end_time=yesterday")));
  EXPECT_EQ(code, "invalid_time");
  EXPECT_EQ(message.rfind("end_time ", 0), 0u) << message;
  EXPECT_EQ(refusal(read_message_filter(with_query(
                        "start_time=2026-12-02T00:00:00Z&end_time=2026-12-01T00:00:00Z")))
                .first,
            "invalid_time");
}

TEST(query_params, fractions_keep_their_microseconds) {
  EXPECT_EQ(parse_time_us("2026-12-01T00:00:00.123456Z"), 1'796'083'200'123'456);
  EXPECT_EQ(format_time_us(1'796'083'200'123'456), "2026-12-01T00:00:00.123456Z");
  EXPECT_EQ(format_time_us(1'796'083'200'123'000), "2026-12-01T00:00:00.123Z");
  EXPECT_EQ(format_time_us(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(query_params, the_time_format_agrees_with_the_api_timestamps) {
  // format_rfc3339_ms is what every other endpoint answers; the query API's own formatter must
  // give the same text for whole milliseconds, either side of the epoch and of leap days.
  for (std::int64_t ms : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{951'782'400'000},
                          std::int64_t{951'868'799'999}, std::int64_t{4'102'444'800'000},
                          std::int64_t{-2'208'988'800'001}}) {
    EXPECT_EQ(format_time_us(ms * 1000), format_rfc3339_ms(ms)) << ms;
  }
  // Beyond what a nanosecond system_clock (and so format_rfc3339_ms) holds.
  EXPECT_EQ(format_time_us(253'402'300'799'999'999), "9999-12-31T23:59:59.999999Z");
  for (std::int64_t ms = 1'796'083'200'000; ms < 1'796'083'200'000 + 400LL * 86'400'000;
       ms += 86'400'000 + 3'601'001) {
    EXPECT_EQ(format_time_us(ms * 1000), format_rfc3339_ms(ms)) << ms;
  }
}

TEST(query_params, partition_must_be_utf8) {
  EXPECT_EQ(
      *std::get<message_filter>(read_message_filter(with_query("partition=dev%201"))).partition,
      "dev 1");
  const auto [code, message] = refusal(read_message_filter(with_query("partition=%FF")));
  EXPECT_EQ(code, "invalid_filter");
  EXPECT_EQ(message.rfind("partition ", 0), 0u) << message;
}

TEST(query_params, fingerprints_bind_every_filter_and_the_sort) {
  message_filter a;
  message_filter b;
  b.partition = "p";
  message_filter c;
  c.start_us = 1;
  message_filter d;
  d.end_us = 1;
  const std::string base = fingerprint("q", a, sort_order::asc);
  EXPECT_NE(base, fingerprint("q", b, sort_order::asc));
  EXPECT_NE(base, fingerprint("q", c, sort_order::asc));
  EXPECT_NE(base, fingerprint("q", d, sort_order::asc));
  EXPECT_NE(base, fingerprint("q", a, sort_order::desc));
  EXPECT_NE(base, fingerprint("r", a, sort_order::asc));
  EXPECT_NE(fingerprint("q", c, sort_order::asc), fingerprint("q", d, sort_order::asc));
  // A partition cannot smuggle in another field.
  message_filter e;
  e.partition = "x&start=1";
  EXPECT_NE(fingerprint("q", e, sort_order::asc), fingerprint("q", c, sort_order::asc));
  EXPECT_EQ(base, fingerprint("q", message_filter{}, sort_order::asc));
}

}  // namespace
}  // namespace sluice::query
