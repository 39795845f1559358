#include "sluice/ingest/ingest_command.hpp"

#include <sstream>
#include <vector>

#include "sluice/ingest/upload_client.hpp"

#include <gtest/gtest.h>

namespace sluice::ingest {
namespace {

std::optional<std::string> parse(std::vector<std::string> args, ingest_command_options& o) {
  return parse_ingest_command(args, o);
}

TEST(ingest_command, arguments) {
  ingest_command_options o;
  ASSERT_FALSE(parse({"data.csv", "--queue", "q", "--url", "http://h:1", "--partition-field",
                      "dev ice", "--time-field", "ts", "--time-format", "epoch_ms", "--strict",
                      "--idempotency-key", "k", "--token", "t", "--quiet"},
                     o));
  EXPECT_EQ(o.file, "data.csv");
  EXPECT_EQ(o.format, "csv");
  EXPECT_EQ(o.token, "t");
  EXPECT_TRUE(o.strict);
  EXPECT_TRUE(o.quiet);
  EXPECT_EQ(ingest_target(o, "/base"),
            "/base/api/v1/queues/q/ingest?partition_field=dev%20ice&time_field=ts&time_format="
            "epoch_ms&strict=true");

  ingest_command_options d;
  ASSERT_FALSE(parse({"-", "--queue", "q"}, d));
  EXPECT_EQ(d.format, "ndjson");
  EXPECT_EQ(ingest_target(d, ""), "/api/v1/queues/q/ingest");
}

TEST(ingest_command, usage_errors) {
  const auto parse_fresh = [](std::vector<std::string> args) {
    ingest_command_options o;
    return parse(std::move(args), o);
  };
  EXPECT_EQ(parse_fresh({"--queue", "q"}), "FILE (or - for stdin) is missing");
  EXPECT_EQ(parse_fresh({"f"}), "--queue is missing");
  EXPECT_EQ(parse_fresh({"f", "g", "--queue", "q"}), "only one FILE may be given");
  EXPECT_EQ(parse_fresh({"f", "--queue"}), "--queue needs a value");
  EXPECT_EQ(parse_fresh({"f", "--queue", "q", "--format", "xml"}),
            "--format must be ndjson or csv");
  EXPECT_EQ(parse_fresh({"f", "--bogus"}), "unknown option '--bogus'");
  std::ostringstream out, err;
  const std::vector<std::string> args = {"f"};
  EXPECT_EQ(run_ingest_command(args, out, err), 2);
  EXPECT_NE(err.str().find("usage: sluice ingest"), std::string::npos);
}

TEST(ingest_command, urls) {
  parsed_url u;
  std::string error;
  ASSERT_TRUE(parse_http_url("http://example.com", u, error));
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.base_path, "");
  ASSERT_TRUE(parse_http_url("http://127.0.0.1:8080/sluice/", u, error));
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.base_path, "/sluice");
  ASSERT_TRUE(parse_http_url("http://[::1]:9/", u, error));
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 9);
  EXPECT_FALSE(parse_http_url("https://h", u, error));
  EXPECT_FALSE(parse_http_url("ftp://h", u, error));
  EXPECT_FALSE(parse_http_url("http://:80", u, error));
  EXPECT_FALSE(parse_http_url("http://h:0", u, error));
  EXPECT_FALSE(parse_http_url("http://h:99999", u, error));
  EXPECT_FALSE(parse_http_url("http://h:x", u, error));
}

TEST(ingest_command, formatting) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(999), "999 B");
  EXPECT_EQ(format_bytes(1500), "1.5 KB");
  EXPECT_EQ(format_bytes(64'000'000), "64 MB");
  EXPECT_EQ(format_bytes(1'073'741'824), "1.1 GB");
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(42.4), "0:42");
  EXPECT_EQ(format_duration(3723), "1:02:03");
}

}  // namespace
}  // namespace sluice::ingest
