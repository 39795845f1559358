#include "sluice/buffer/buffer_command.hpp"

#include <sstream>

#include "sluice/buffer/buffer_log.hpp"
#include "sluice/buffer/log_layout.hpp"
#include "sluice/buffer/record_format.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "buffer_test_support.hpp"

namespace sluice::buffer {
namespace {

using namespace test;

struct result {
  int status;
  std::string out;
  std::string err;
};

result command(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int status = run_buffer_command(args, out, err);
  return {status, out.str(), err.str()};
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

// A FILE_BUFFER_DIR with two logs, failover/ (3 orders + 2 emails) and qos0/ (1 order).
class buffer_command_test : public ::testing::Test {
 protected:
  void SetUp() override {
    failover_ = make_messages(0, 3);
    for (int i = 3; i < 5; ++i)
      failover_.push_back(make_message(i, "emails"));
    failover_[1].payload = "{\n  \"pretty\": [1, 2],\n  \"s\": \"a\\nb\"\n}";
    write_log(tmp_.path() / "failover", failover_);
    write_log(tmp_.path() / "qos0", make_messages(10, 1));
  }

  void write_log(const fs::path& dir, const std::vector<message>& messages) {
    buffer_options o;
    o.fsync = fsync_policy::never;
    std::error_code ec;
    auto log = buffer_log::open(dir, o, ioc_.get_executor(), ec);
    ASSERT_FALSE(ec);
    run(ioc_,
        [&]() -> asio::awaitable<void> { co_await log->append(messages, asio::use_awaitable); }());
  }

  fs::path segment(const std::string& log) const {
    return tmp_.path() / log / layout::file_name(1, ".seg");
  }

  temp_dir tmp_;
  asio::io_context ioc_;
  std::vector<message> failover_;
};

TEST_F(buffer_command_test, usage_errors_exit_2) {
  EXPECT_EQ(command({}).status, 2);
  EXPECT_EQ(command({"stat"}).status, 2);
  EXPECT_EQ(command({"frobnicate", tmp_.path().string()}).status, 2);
  EXPECT_EQ(command({"stat", tmp_.path().string(), "extra"}).status, 2);
  const auto r = command({"dump", (tmp_.path() / "missing").string()});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("not a directory"), std::string::npos);
  EXPECT_NE(command({}).err.find("usage"), std::string::npos);
  const auto help = command({"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("usage"), std::string::npos);
}

TEST_F(buffer_command_test, stat_reports_counts_times_and_queues_per_log) {
  const auto r = command({"stat", tmp_.path().string()});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const auto failover_at = r.out.find("log " + (tmp_.path() / "failover").string());
  const auto qos0_at = r.out.find("log " + (tmp_.path() / "qos0").string());
  ASSERT_NE(failover_at, std::string::npos) << r.out;
  ASSERT_NE(qos0_at, std::string::npos) << r.out;
  const std::string failover = r.out.substr(failover_at, qos0_at - failover_at);
  std::uint64_t bytes = 0;
  for (const auto& m : failover_)
    bytes += encoded_size(m);
  EXPECT_NE(failover.find("segments: 1\n"), std::string::npos) << failover;
  EXPECT_NE(failover.find("pending records: 5 (" + std::to_string(bytes) + " bytes)"),
            std::string::npos)
      << failover;
  EXPECT_NE(failover.find("oldest: 2023-11-14T22:13:20.000Z"), std::string::npos) << failover;
  EXPECT_NE(failover.find("newest: 2023-11-14T22:13:20.004Z"), std::string::npos) << failover;
  EXPECT_NE(failover.find("queue emails: 2 records"), std::string::npos) << failover;
  EXPECT_NE(failover.find("queue orders: 3 records"), std::string::npos) << failover;
  EXPECT_NE(r.out.substr(qos0_at).find("pending records: 1 "), std::string::npos) << r.out;

  // A single log directory works too.
  const auto one = command({"stat", (tmp_.path() / "qos0").string()});
  EXPECT_EQ(one.status, 0);
  EXPECT_EQ(one.out.find("failover"), std::string::npos);
}

TEST_F(buffer_command_test, dump_prints_one_json_object_per_record_with_the_payload_raw) {
  const auto r = command({"dump", (tmp_.path() / "failover").string()});
  EXPECT_EQ(r.status, 0) << r.err;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), failover_.size());
  std::uint64_t offset = segment_header_size;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto j = nlohmann::json::parse(out[i]);
    const auto& m = failover_[i];
    EXPECT_EQ(j.at("id"), m.id.to_string());
    EXPECT_EQ(j.at("queue"), m.queue);
    EXPECT_EQ(j.at("partition"), m.partition);
    EXPECT_EQ(j.at("createdMs"), m.created_ms);
    EXPECT_EQ(j.at("namespace").is_null(), !m.namespace_);
    EXPECT_EQ(j.at("task").is_null(), !m.task);
    EXPECT_EQ(j.at("traceId").is_null(), !m.trace_id);
    EXPECT_EQ(j.at("transactionId").is_null(), !m.transaction_id);
    EXPECT_EQ(j.at("payload"), nlohmann::json::parse(m.payload)) << "payload embedded as JSON";
    EXPECT_EQ(j.at("segment"), layout::file_name(1, ".seg"));
    EXPECT_EQ(j.at("offset"), offset);
    EXPECT_EQ(j.at("log"), "failover");
    offset += encoded_size(m);
  }
  EXPECT_NE(out[0].find(R"("payload":{"n":0,"pad":""})"), std::string::npos)
      << "inserted verbatim, not re-serialized: " << out[0];
  EXPECT_EQ(nlohmann::json::parse(out[1]).at("payload").at("s"), "a\nb");
}

TEST_F(buffer_command_test, verify_is_clean_on_intact_logs) {
  const auto r = command({"verify", tmp_.path().string()});
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("ok " + segment("failover").string() + " records=5"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ok " + segment("qos0").string() + " records=1"), std::string::npos);
}

TEST_F(buffer_command_test, verify_reports_the_exact_offset_of_a_corrupted_record_and_exits_1) {
  const std::uint64_t bad =
      segment_header_size + encoded_size(failover_[0]) + encoded_size(failover_[1]);
  std::string bytes = read_file(segment("failover"));
  bytes[bad + record_header_size + 3] ^= 0x01;
  write_file(segment("failover"), bytes);

  const auto r = command({"verify", tmp_.path().string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("bad " + segment("failover").string() + " offset=" + std::to_string(bad) +
                       " error=crc mismatch"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ok " + segment("qos0").string()), std::string::npos) << r.out;

  // dump prints what precedes the bad record and reports it.
  const auto d = command({"dump", (tmp_.path() / "failover").string()});
  EXPECT_EQ(d.status, 1);
  EXPECT_EQ(lines(d.out).size(), 2u);
  EXPECT_NE(d.err.find("offset=" + std::to_string(bad)), std::string::npos);
}

TEST_F(buffer_command_test, verify_reports_a_garbage_file_at_offset_0) {
  write_file(tmp_.path() / "qos0" / layout::file_name(2, ".seg"), "not a segment at all");
  const auto r = command({"verify", (tmp_.path() / "qos0").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("offset=0 error=bad segment header"), std::string::npos) << r.out;
}

TEST_F(buffer_command_test, failed_records_are_listed_with_their_reason) {
  {
    buffer_options o;
    o.fsync = fsync_policy::never;
    std::error_code ec;
    auto log = buffer_log::open(tmp_.path() / "qos0", o, ioc_.get_executor(), ec);
    ASSERT_FALSE(ec);
    run(ioc_, [&]() -> asio::awaitable<void> {
      co_await log->quarantine_failed(make_messages(20, 2), "bad partition", asio::use_awaitable);
    }());
  }
  const auto d = command({"dump", (tmp_.path() / "qos0").string()});
  EXPECT_EQ(d.status, 0) << d.err;
  const auto out = lines(d.out);
  ASSERT_EQ(out.size(), 3u);
  const auto failed = nlohmann::json::parse(out[2]);
  EXPECT_EQ(failed.at("reason"), "bad partition");
  EXPECT_TRUE(failed.contains("failedMs"));
  const auto s = command({"stat", (tmp_.path() / "qos0").string()});
  EXPECT_NE(s.out.find("failed records: 2 in 1 files"), std::string::npos) << s.out;
  const auto v = command({"verify", (tmp_.path() / "qos0").string()});
  EXPECT_EQ(v.status, 0) << v.out;
}

TEST_F(buffer_command_test, verify_reports_a_segment_whose_header_names_another_file) {
  fs::copy_file(segment("qos0"), tmp_.path() / "qos0" / layout::file_name(5, ".seg"));
  const auto r = command({"verify", (tmp_.path() / "qos0").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("bad " + (tmp_.path() / "qos0" / layout::file_name(5, ".seg")).string() +
                       " offset=0 error=bad segment header"),
            std::string::npos)
      << r.out;
}

TEST_F(buffer_command_test, import_appends_the_valid_records_of_a_quarantined_segment) {
  // A segment with a corrupt record in its middle, as an operator finds it in quarantine/.
  const fs::path q = tmp_.path() / "failover" / "quarantine";
  fs::create_directories(q);
  const fs::path file = q / layout::file_name(1, ".seg");
  fs::copy_file(segment("failover"), file);
  const std::uint64_t bad =
      segment_header_size + encoded_size(failover_[0]) + encoded_size(failover_[1]);
  std::string bytes = read_file(file);
  bytes[bad + record_header_size + 3] ^= 0x01;
  write_file(file, bytes);
  // The bare copy of a range (<segment>.<offset>.bad) imports too.
  const fs::path range = q / (layout::file_name(1, ".seg") + ".32.bad");
  write_file(
      range,
      read_file(segment("failover")).substr(segment_header_size, encoded_size(failover_[0])));

  {
    std::error_code ec;
    auto running =
        buffer_log::open(tmp_.path() / "qos0", buffer_options{}, ioc_.get_executor(), ec);
    ASSERT_FALSE(ec);
    const auto locked = command({"import", (tmp_.path() / "qos0").string(), file.string()});
    EXPECT_EQ(locked.status, 1);
    EXPECT_NE(locked.err.find("in use by a running sluice"), std::string::npos) << locked.err;
  }
  const auto r = command({"import", (tmp_.path() / "qos0").string(), file.string()});
  EXPECT_EQ(r.status, 1) << "corrupt records were met: " << r.err;
  EXPECT_NE(r.out.find("imported 4 records"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("corrupt: 1 records in 1 ranges"), std::string::npos) << r.out;
  const auto b = command({"import", (tmp_.path() / "qos0").string(), range.string()});
  EXPECT_EQ(b.status, 0) << b.err;
  EXPECT_NE(b.out.find("imported 1 records"), std::string::npos) << b.out;

  buffer_options o;
  o.fsync = fsync_policy::never;
  std::error_code ec;
  auto log = buffer_log::open(tmp_.path() / "qos0", o, ioc_.get_executor(), ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(log->stats().pending_records, 1u + 4u + 1u);
  const auto records = run(ioc_, [&]() -> asio::awaitable<std::vector<buffered_record>> {
    auto [e, got] = co_await log->read_batch(100, asio::as_tuple(asio::use_awaitable));
    co_return got;
  }());
  ASSERT_EQ(records.size(), 6u);
  EXPECT_TRUE(same_message(records[1].msg, failover_[0]));
  EXPECT_TRUE(same_message(records[3].msg, failover_[3]));
  EXPECT_TRUE(same_message(records[5].msg, failover_[0]));
}

}  // namespace
}  // namespace sluice::buffer
