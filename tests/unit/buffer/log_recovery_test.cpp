#include "sluice/buffer/log_recovery.hpp"

#include "sluice/buffer/ack_cursor.hpp"
#include "sluice/buffer/buffer_log.hpp"
#include "sluice/buffer/log_layout.hpp"
#include "sluice/buffer/record_format.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "buffer_test_support.hpp"

namespace sluice::buffer {
namespace {

using namespace test;

// Writes records through the real log, then damages the files and reopens.
class recovery_test : public ::testing::Test {
 protected:
  void SetUp() override {
    messages_ = make_messages(0, 5, 30);
    buffer_options o;
    o.fsync = fsync_policy::never;
    std::error_code ec;
    auto log = buffer_log::open(tmp_.path(), o, ioc_.get_executor(), ec);
    ASSERT_FALSE(ec);
    run(ioc_, [&]() -> asio::awaitable<void> {
      for (std::size_t i = 0; i < messages_.size(); ++i) {
        std::vector<message> one(messages_.begin() + i, messages_.begin() + i + 1);
        co_await log->append(std::move(one), asio::use_awaitable);
      }
    }());
    log.reset();
    segment_ = tmp_.path() / layout::file_name(1, ".seg");
    ASSERT_TRUE(fs::exists(segment_));
    std::uint64_t at = segment_header_size;
    for (const auto& m : messages_) {
      offsets_.push_back(at);
      at += encoded_size(m);
    }
    end_ = at;
    ASSERT_EQ(fs::file_size(segment_), end_);
  }

  std::unique_ptr<buffer_log> reopen() {
    std::error_code ec;
    auto log = buffer_log::open(tmp_.path(), buffer_options{}, ioc_.get_executor(), ec);
    EXPECT_FALSE(ec) << ec.message();
    return log;
  }

  std::vector<buffered_record> read_all(buffer_log& log) {
    return run(ioc_, [&]() -> asio::awaitable<std::vector<buffered_record>> {
      auto [ec, records] = co_await log.read_batch(1000, asio::as_tuple(asio::use_awaitable));
      co_return records;
    }());
  }

  void flip_byte(std::uint64_t at) {
    std::string bytes = read_file(segment_);
    bytes[at] = static_cast<char>(bytes[at] ^ 0x5a);
    write_file(segment_, bytes);
  }

  std::vector<fs::path> quarantine() const {
    return files_with_suffix(tmp_.path() / "quarantine", "");
  }

  temp_dir tmp_;
  asio::io_context ioc_;
  std::vector<message> messages_;
  std::vector<std::uint64_t> offsets_;
  std::uint64_t end_ = 0;
  fs::path segment_;
};

TEST_F(recovery_test, clean_log_recovers_everything) {
  std::error_code ec;
  const auto report = recover_log(tmp_.path(), ec);
  ASSERT_FALSE(ec);
  ASSERT_EQ(report.segments.size(), 1u);
  EXPECT_EQ(report.segments[0].records, 5u);
  EXPECT_EQ(report.segments[0].end, end_);
  EXPECT_EQ(report.truncated_tails, 0u);
  EXPECT_EQ(report.next_segment_id, 2u);
  EXPECT_EQ(report.head_created_ms, messages_[0].created_ms);
}

TEST_F(recovery_test, corrupt_last_record_is_cut_at_its_offset) {
  flip_byte(offsets_[4] + record_header_size + 20);
  auto log = reopen();
  EXPECT_EQ(fs::file_size(segment_), offsets_[4]);
  const auto st = log->stats();
  EXPECT_EQ(st.truncated_tails_total, 1u);
  EXPECT_EQ(st.pending_records, 4u);
  const auto records = read_all(*log);
  ASSERT_EQ(records.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(same_message(records[i].msg, messages_[i]));

  // The cut bytes are kept for an operator.
  const auto q = quarantine();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].filename().string(),
            layout::file_name(1, ".seg") + "." + std::to_string(offsets_[4]) + ".tail");
  EXPECT_EQ(fs::file_size(q[0]), end_ - offsets_[4]);
}

TEST_F(recovery_test, a_corrupt_middle_record_is_set_aside_and_the_records_after_it_are_kept) {
  flip_byte(offsets_[2] + 4);  // the CRC field itself
  for (int start = 0; start < 2; ++start) {
    auto log = reopen();
    EXPECT_EQ(fs::file_size(segment_), end_) << "nothing is cut";
    const auto st = log->stats();
    EXPECT_EQ(st.pending_records, 4u);
    EXPECT_EQ(st.truncated_tails_total, 0u);
    EXPECT_EQ(st.unreadable_ranges_total, 1u);
    EXPECT_EQ(st.unreadable_records_total, 1u);
    EXPECT_EQ(st.quarantined_bytes_total, start == 0 ? offsets_[3] - offsets_[2] : 0u)
        << "copied once, at the first start that met it";
    const auto records = read_all(*log);
    ASSERT_EQ(records.size(), 4u);
    EXPECT_TRUE(same_message(records[1].msg, messages_[1]));
    EXPECT_TRUE(same_message(records[2].msg, messages_[3]));
    EXPECT_EQ(records[2].position.offset, offsets_[3]);
    EXPECT_EQ(log->stats().unreadable_ranges_total, 1u) << "replay does not meet it again";
  }
  const auto q = quarantine();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].filename().string(),
            layout::file_name(1, ".seg") + "." + std::to_string(offsets_[2]) + ".bad");
  EXPECT_EQ(read_file(q[0]), read_file(segment_).substr(offsets_[2], offsets_[3] - offsets_[2]));
}

TEST_F(recovery_test, an_ack_cursor_at_a_corrupt_range_resumes_after_it) {
  flip_byte(offsets_[2] + record_header_size + 1);
  {
    ack_cursor_file file;
    ASSERT_FALSE(file.open(tmp_.path()));
    ASSERT_FALSE(file.store({1, offsets_[3]}));  // acknowledged up to the end of the range
  }
  auto log = reopen();
  EXPECT_EQ(log->stats().pending_records, 2u);
  const auto records = read_all(*log);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(same_message(records[0].msg, messages_[3]));
  ASSERT_FALSE(log->acknowledge(records[1].position));
  ASSERT_TRUE(run(ioc_, eventually([&] { return !fs::exists(segment_); })));
}

TEST_F(recovery_test, torn_tail_inside_the_frame_header_is_cut) {
  fs::resize_file(segment_, offsets_[4] + 5);
  auto log = reopen();
  EXPECT_EQ(fs::file_size(segment_), offsets_[4]);
  EXPECT_EQ(log->stats().truncated_tails_total, 1u);
  EXPECT_EQ(read_all(*log).size(), 4u);
}

TEST_F(recovery_test, torn_tail_inside_the_body_is_cut) {
  fs::resize_file(segment_, offsets_[3] + record_header_size + 10);
  auto log = reopen();
  EXPECT_EQ(fs::file_size(segment_), offsets_[3]);
  EXPECT_EQ(log->stats().truncated_tails_total, 1u);
  EXPECT_EQ(log->stats().pending_records, 3u);
}

TEST_F(recovery_test, zeroed_tail_after_valid_records_is_cut) {
  std::string bytes = read_file(segment_);
  bytes.append(4096, '\0');  // what a preallocated or half-flushed file looks like
  write_file(segment_, bytes);
  auto log = reopen();
  EXPECT_EQ(fs::file_size(segment_), end_);
  EXPECT_EQ(log->stats().pending_records, 5u);
  EXPECT_EQ(log->stats().truncated_tails_total, 1u);
}

TEST_F(recovery_test, an_out_of_bounds_length_is_skipped_to_the_next_valid_record) {
  std::string bytes = read_file(segment_);
  bytes[offsets_[1] + 3] = '\x7f';
  write_file(segment_, bytes);
  auto log = reopen();
  EXPECT_EQ(fs::file_size(segment_), end_);
  EXPECT_EQ(log->stats().pending_records, 4u);
  EXPECT_EQ(log->stats().unreadable_records_total, 1u);
  EXPECT_EQ(read_all(*log).size(), 4u);
}

TEST_F(recovery_test, a_bad_first_record_is_set_aside_and_the_rest_kept) {
  flip_byte(offsets_[0] + record_header_size);
  auto log = reopen();
  EXPECT_EQ(log->stats().pending_records, 4u);
  EXPECT_EQ(log->stats().segments, 1u);
  ASSERT_EQ(quarantine().size(), 1u);
  EXPECT_EQ(fs::file_size(quarantine()[0]), offsets_[1] - offsets_[0]);
  const auto records = read_all(*log);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_TRUE(same_message(records[0].msg, messages_[1]));
}

TEST_F(recovery_test, a_segment_of_only_garbage_records_is_cut_to_its_header_and_removed) {
  std::string bytes = read_file(segment_);
  for (std::uint64_t at = segment_header_size; at < end_; ++at)
    bytes[at] = static_cast<char>((at * 131 + 7) & 0xff);
  write_file(segment_, bytes);
  auto log = reopen();
  EXPECT_FALSE(fs::exists(segment_));
  EXPECT_EQ(log->stats().pending_records, 0u);
  EXPECT_EQ(log->stats().truncated_tails_total, 1u);
  ASSERT_EQ(quarantine().size(), 1u);
  EXPECT_EQ(fs::file_size(quarantine()[0]), end_ - segment_header_size);
}

TEST_F(recovery_test, a_garbage_segment_is_quarantined_whole_and_the_rest_survives) {
  const fs::path garbage = tmp_.path() / layout::file_name(2, ".seg");
  std::string noise;
  for (int i = 0; i < 1000; ++i)
    noise.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  write_file(garbage, noise);
  auto log = reopen();
  EXPECT_FALSE(fs::exists(garbage));
  const auto q = quarantine();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].filename(), garbage.filename());
  EXPECT_EQ(read_file(q[0]), noise) << "moved, not modified";
  const auto st = log->stats();
  EXPECT_EQ(st.quarantined_segments_total, 1u);
  EXPECT_EQ(st.truncated_tails_total, 0u);
  EXPECT_EQ(st.pending_records, 5u);
  EXPECT_EQ(read_all(*log).size(), 5u);

  // New appends never reuse the quarantined id.
  run(ioc_, [&]() -> asio::awaitable<void> {
    co_await log->append(make_messages(9, 1), asio::use_awaitable);
  }());
  EXPECT_TRUE(fs::exists(tmp_.path() / layout::file_name(3, ".seg")));
}

TEST_F(recovery_test, short_and_misnamed_segments_are_quarantined) {
  write_file(tmp_.path() / layout::file_name(7, ".seg"), "SLBF");
  // A valid header of segment 1 under the name of segment 8.
  fs::copy_file(segment_, tmp_.path() / layout::file_name(8, ".seg"));
  auto log = reopen();
  EXPECT_EQ(log->stats().quarantined_segments_total, 2u);
  EXPECT_EQ(log->stats().pending_records, 5u);
}

TEST_F(recovery_test, leftover_tmp_files_are_removed) {
  write_file(tmp_.path() / (layout::file_name(2, ".seg") + ".tmp"), "partial");
  auto log = reopen();
  EXPECT_FALSE(fs::exists(tmp_.path() / (layout::file_name(2, ".seg") + ".tmp")));
  EXPECT_EQ(log->stats().pending_records, 5u);
}

TEST_F(recovery_test, an_ack_cursor_off_a_record_boundary_is_ignored) {
  {
    auto log = reopen();
    const auto records = read_all(*log);
    ASSERT_FALSE(log->acknowledge(records[1].position));
  }
  std::error_code ec;
  auto report = recover_log(tmp_.path(), ec);
  EXPECT_EQ(report.ack, (record_position{1, offsets_[2]}));
  EXPECT_EQ(report.segments.at(0).acked_records, 2u);
  EXPECT_EQ(report.head_created_ms, messages_[2].created_ms);

  // A cursor into the middle of a record: recovery replays the whole segment.
  {
    ack_cursor_file file;
    ASSERT_FALSE(file.open(tmp_.path()));
    ASSERT_FALSE(file.store({1, offsets_[2] + 3}));
  }
  report = recover_log(tmp_.path(), ec);
  EXPECT_EQ(report.ack, (record_position{1, segment_header_size}));
  EXPECT_EQ(report.segments.at(0).acked_records, 0u);
  EXPECT_EQ(report.head_created_ms, messages_[0].created_ms);

  std::string ack = read_file(tmp_.path() / "ack");
  ASSERT_EQ(ack.size(), 28u);
  write_file(tmp_.path() / "ack", ack.substr(0, 27) + static_cast<char>(ack[27] ^ 1));
  report = recover_log(tmp_.path(), ec);
  EXPECT_EQ(report.segments.at(0).acked_records, 0u) << "a corrupt ack file is ignored";
}

}  // namespace
}  // namespace sluice::buffer
