#include <cerrno>
#include <fstream>
#include <sys/resource.h>
#include <unistd.h>

#include "sluice/buffer/buffer_log.hpp"
#include "sluice/buffer/errc.hpp"
#include "sluice/buffer/log_layout.hpp"
#include "sluice/buffer/record_format.hpp"
#include "sluice/buffer/replay_reader.hpp"

#include <gtest/gtest.h>

#include "buffer_test_support.hpp"

namespace sluice::buffer {
namespace {

using namespace test;

int lowest_free_fd() {
  const int probe = ::dup(0);
  ::close(probe);
  return probe;
}

// Lowers RLIMIT_NOFILE to `limit` (by default the lowest free descriptor, so the next open()
// fails with EMFILE) until destroyed.
class no_more_files {
 public:
  explicit no_more_files(int limit = lowest_free_fd()) {
    ::getrlimit(RLIMIT_NOFILE, &old_);
    rlimit tight = old_;
    tight.rlim_cur = static_cast<rlim_t>(limit);
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  }
  no_more_files(const no_more_files&) = delete;
  no_more_files& operator=(const no_more_files&) = delete;
  ~no_more_files() { ::setrlimit(RLIMIT_NOFILE, &old_); }

 private:
  rlimit old_{};
};

class replay_errors_test : public log_test_base {
 protected:
  // Damages one byte inside the body of the record at `offset` of segment `id`.
  void damage(std::uint64_t id, std::uint64_t offset) {
    const auto seg = tmp_.path() / layout::file_name(id, ".seg");
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset + record_header_size + 2));
    f.put('\x7f');
  }

  std::vector<fs::path> quarantined() const {
    return files_with_suffix(tmp_.path() / "quarantine", "");
  }
};

TEST(proves_corruption, only_failed_checks_on_bytes_read_prove_corruption) {
  for (auto e : {errc::crc_mismatch, errc::torn_record, errc::bad_record_length,
                 errc::malformed_record, errc::bad_segment_header}) {
    EXPECT_TRUE(proves_corruption(e)) << make_error_code(e).message();
  }
  for (int e : {EMFILE, ENFILE, ENOMEM, EIO, EINTR, EAGAIN, ENOENT, EACCES}) {
    EXPECT_FALSE(proves_corruption({e, std::system_category()})) << e;
  }
  EXPECT_FALSE(proves_corruption(errc::busy));
  EXPECT_FALSE(proves_corruption({}));
}

TEST_F(replay_errors_test, an_open_failure_fails_the_read_and_skips_nothing) {
#if defined(__SANITIZE_ADDRESS__)
  // UBSan's vptr check probes memory through a pipe: in a process without a free descriptor it
  // reports every object it checks as invalid. The Debug build runs this test.
  GTEST_SKIP() << "needs a process with no free file descriptor, which UBSan cannot check";
#endif
  auto log = open_log();
  const auto messages = make_messages(0, 5);
  ASSERT_FALSE(append(*log, messages));
  std::error_code ec;
  std::vector<buffered_record> records;
  {
    no_more_files limit;
    std::tie(ec, records) = read_once(*log, 10);
  }
  EXPECT_EQ(ec, std::error_code(EMFILE, std::system_category())) << ec.message();
  EXPECT_TRUE(records.empty());
  auto st = log->stats();
  EXPECT_EQ(st.pending_records, 5u);
  EXPECT_EQ(st.unreadable_ranges_total, 0u);
  EXPECT_EQ(st.read_errors_total, 1u);
  EXPECT_TRUE(quarantined().empty());

  // The fault cleared: the same records, in order, and they drain normally.
  records = read_all(*log, 10);
  ASSERT_EQ(records.size(), 5u);
  for (std::size_t i = 0; i < records.size(); ++i)
    EXPECT_TRUE(same_message(records[i].msg, messages[i])) << i;
  ASSERT_FALSE(log->acknowledge(records.back().position));
  ASSERT_TRUE(eventually([&] { return log->stats().segments == 0; }));
  EXPECT_EQ(log->stats().pending_records, 0u);
  EXPECT_TRUE(eventually([&] { return files_with_suffix(tmp_.path(), ".seg").empty(); }));
  EXPECT_TRUE(quarantined().empty());
}

TEST_F(replay_errors_test, records_read_before_a_failure_are_returned_and_the_rest_waits) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "needs a process with no free file descriptor, which UBSan cannot check";
#endif
  buffer_options o = fast_options();
  o.segment_bytes = 1024;
  auto log = open_log(o);
  const auto messages = make_messages(0, 20, 40);
  for (std::size_t i = 0; i < messages.size(); i += 2)
    ASSERT_FALSE(append(*log, {messages.begin() + i, messages.begin() + i + 2}));
  ASSERT_GT(log->stats().segments, 2u);

  const int segment_fd = lowest_free_fd();
  auto [ec, first] = read_once(*log, 1);  // opens segment 1 and keeps it open
  ASSERT_FALSE(ec);
  ASSERT_EQ(first.size(), 1u);
  std::vector<buffered_record> rest;
  std::error_code fail_ec;
  std::vector<buffered_record> after_fail;
  {
    // Segment 1 stays readable; the descriptor it frees is not enough for segment 2.
    no_more_files limit(segment_fd);
    std::tie(ec, rest) = read_once(*log, 100);  // the rest of segment 1, then segment 2 fails
    std::tie(fail_ec, after_fail) = read_once(*log, 100);
  }
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back().position.segment, first[0].position.segment);
  EXPECT_EQ(fail_ec, std::error_code(EMFILE, std::system_category()));
  EXPECT_TRUE(after_fail.empty());
  EXPECT_EQ(log->stats().pending_records, messages.size());
  EXPECT_EQ(log->stats().unreadable_ranges_total, 0u);

  // A replayer rewinds after a failed read: everything comes back, nothing was skipped.
  ASSERT_FALSE(log->rewind());
  const auto all = read_all(*log, 7);
  ASSERT_EQ(all.size(), messages.size());
  for (std::size_t i = 0; i < all.size(); ++i)
    EXPECT_TRUE(same_message(all[i].msg, messages[i])) << i;
  EXPECT_TRUE(quarantined().empty());
}

TEST_F(replay_errors_test, a_corrupt_record_in_a_sealed_segment_sets_aside_exactly_that_record) {
  buffer_options o = fast_options();
  o.segment_bytes = 1024;
  auto log = open_log(o);
  const auto messages = make_messages(0, 12, 40);
  for (const auto& m : messages)
    ASSERT_FALSE(append(*log, {m}));
  ASSERT_GT(log->stats().segments, 1u);
  // Record 2 of segment 1, behind the log's back after it was committed.
  const std::uint64_t bad =
      segment_header_size + encoded_size(messages[0]) + encoded_size(messages[1]);
  damage(1, bad);

  auto records = read_all(*log, 5);
  ASSERT_EQ(records.size(), messages.size() - 1);
  for (std::size_t i = 0, j = 0; i < messages.size(); ++i) {
    if (i == 2)
      continue;
    EXPECT_TRUE(same_message(records[j++].msg, messages[i])) << i;
  }
  auto st = log->stats();
  EXPECT_EQ(st.unreadable_ranges_total, 1u);
  EXPECT_EQ(st.unreadable_records_total, 1u);
  EXPECT_EQ(st.quarantined_bytes_total, encoded_size(messages[2]));
  EXPECT_EQ(st.pending_records, messages.size() - 1) << "the set-aside record is not pending";
  const auto copy = tmp_.path() / "quarantine" /
                    (layout::file_name(1, ".seg") + "." + std::to_string(bad) + ".bad");
  ASSERT_TRUE(fs::exists(copy));
  EXPECT_EQ(fs::file_size(copy), encoded_size(messages[2]));

  // Reading again after a rewind does not meet (or count) the range again.
  ASSERT_FALSE(log->rewind());
  records = read_all(*log, 100);
  EXPECT_EQ(records.size(), messages.size() - 1);
  EXPECT_EQ(log->stats().unreadable_ranges_total, 1u);

  ASSERT_FALSE(log->acknowledge(records.back().position));
  ASSERT_TRUE(eventually([&] { return log->stats().segments == 0; }));
  EXPECT_EQ(log->stats().pending_records, 0u);
  EXPECT_TRUE(eventually([&] { return files_with_suffix(tmp_.path(), ".seg").empty(); }));
  EXPECT_EQ(quarantined().size(), 1u) << "the copy of the range, not the whole segment";
}

TEST_F(replay_errors_test, a_corrupt_last_record_of_a_segment_does_not_stop_replay) {
  buffer_options o = fast_options();
  o.segment_bytes = 512;
  auto log = open_log(o);
  const auto messages = make_messages(0, 8, 100);
  for (const auto& m : messages)
    ASSERT_FALSE(append(*log, {m}));
  // Records per segment: find the last record of segment 1.
  const auto before = read_all(*log, 100);
  ASSERT_FALSE(log->rewind());
  std::size_t last = 0;
  while (before[last + 1].position.segment == 1)
    ++last;
  damage(1, before[last].position.offset);

  // A read that meets only the damaged record still returns the records after it.
  for (std::size_t i = 0; i < last; ++i) {
    auto [ec, one] = read_once(*log, 1);
    ASSERT_FALSE(ec);
    ASSERT_FALSE(log->acknowledge(one[0].position));
  }
  auto [ec, next] = read_once(*log, 1);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_TRUE(same_message(next[0].msg, messages[last + 1]));
  EXPECT_EQ(log->stats().unreadable_ranges_total, 1u);
  // Segment 1 is drained: everything before its corrupt tail was acknowledged.
  ASSERT_TRUE(eventually([&] {
    return !fs::exists(tmp_.path() / layout::file_name(1, ".seg")) &&
           log->stats().segments == before.back().position.segment - 1;
  }));
  EXPECT_EQ(log->stats().pending_records, messages.size() - last - 1);
}

}  // namespace
}  // namespace sluice::buffer
