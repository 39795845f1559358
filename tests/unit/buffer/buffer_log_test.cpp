#include "sluice/buffer/buffer_log.hpp"

#include <fstream>
#include <functional>
#include <set>
#include <signal.h>
#include <sys/resource.h>
#include <thread>

#include "sluice/buffer/errc.hpp"
#include "sluice/buffer/log_layout.hpp"
#include "sluice/buffer/record_format.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "buffer_test_support.hpp"

namespace sluice::buffer {
namespace {

using namespace test;
using asio::awaitable;
using asio::use_awaitable;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

class buffer_log_test : public log_test_base {};

TEST_F(buffer_log_test, append_then_read_returns_records_in_order_with_positions) {
  auto log = open_log();
  const auto messages = make_messages(0, 10);
  ASSERT_FALSE(append(*log, {messages.begin(), messages.begin() + 4}));
  ASSERT_FALSE(append(*log, {messages.begin() + 4, messages.end()}));
  const auto st = log->stats();
  EXPECT_EQ(st.pending_records, 10u);
  EXPECT_EQ(st.appended_total, 10u);
  EXPECT_EQ(st.segments, 1u);
  EXPECT_EQ(st.oldest_pending_created_ms, messages[0].created_ms);

  const auto records = read_all(*log, 3);
  ASSERT_EQ(records.size(), 10u);
  std::uint64_t offset = segment_header_size;
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_TRUE(same_message(records[i].msg, messages[i])) << i;
    EXPECT_EQ(records[i].position.segment, 1u);
    EXPECT_EQ(records[i].position.offset, offset);
    EXPECT_EQ(records[i].size, encoded_size(messages[i]));
    offset += records[i].size;
  }
}

TEST_F(buffer_log_test, fifo_holds_across_segment_rotation_and_acks_delete_segments) {
  buffer_options o = fast_options();
  o.segment_bytes = 1024;
  auto log = open_log(o);
  const auto messages = make_messages(0, 60, 40);
  for (std::size_t i = 0; i < messages.size(); i += 5) {
    ASSERT_FALSE(append(*log, {messages.begin() + i, messages.begin() + i + 5}));
  }
  const std::size_t segments = log->stats().segments;
  EXPECT_GT(segments, 5u);
  EXPECT_EQ(files_with_suffix(tmp_.path(), ".seg").size(), segments);
  for (const auto& f : files_with_suffix(tmp_.path(), ".seg")) {
    // A segment only grows past segment_bytes when one append alone is bigger.
    EXPECT_LE(fs::file_size(f), 1024u) << f;
  }

  const auto records = read_all(*log, 7);
  ASSERT_EQ(records.size(), messages.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    ASSERT_TRUE(same_message(records[i].msg, messages[i])) << i;
    if (i > 0) {
      EXPECT_LT(records[i - 1].position, records[i].position);
    }
  }

  // Acknowledge half: the fully acknowledged segments go, the rest stay.
  ASSERT_FALSE(log->acknowledge(records[29].position));
  EXPECT_EQ(log->stats().pending_records, 30u);
  EXPECT_EQ(log->stats().oldest_pending_created_ms, messages[30].created_ms);
  ASSERT_TRUE(eventually(
      [&] { return files_with_suffix(tmp_.path(), ".seg").size() == log->stats().segments; }));
  std::set<std::uint64_t> still_pending;
  for (std::size_t i = 30; i < records.size(); ++i)
    still_pending.insert(records[i].position.segment);
  EXPECT_EQ(log->stats().segments, still_pending.size());

  // Acknowledging everything removes the active segment too.
  ASSERT_FALSE(log->acknowledge(records.back().position));
  ASSERT_TRUE(eventually([&] { return log->stats().segments == 0; }));
  ASSERT_TRUE(eventually([&] { return files_with_suffix(tmp_.path(), ".seg").empty(); }));
  const auto st = log->stats();
  EXPECT_EQ(st.pending_records, 0u);
  EXPECT_EQ(st.pending_bytes, 0u);
  EXPECT_EQ(st.disk_bytes, 0u);
  EXPECT_EQ(st.acked_total, 60u);
  EXPECT_FALSE(st.oldest_pending_created_ms);

  // And the log goes on in a new segment.
  ASSERT_FALSE(append(*log, make_messages(100, 2)));
  const auto more = read_all(*log, 10);
  ASSERT_EQ(more.size(), 2u);
  EXPECT_GT(more[0].position.segment, records.back().position.segment);
}

TEST_F(buffer_log_test, acknowledge_checks_positions) {
  auto log = open_log();
  ASSERT_FALSE(append(*log, make_messages(0, 3)));
  const auto records = read_all(*log, 10);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(log->acknowledge({records[0].position.segment, records[0].position.offset + 1}),
            errc::unknown_position);
  EXPECT_FALSE(log->acknowledge(records[1].position));
  EXPECT_FALSE(log->acknowledge(records[0].position)) << "already acknowledged is fine";
  EXPECT_EQ(log->stats().pending_records, 1u);
}

TEST_F(buffer_log_test, rewind_rereads_unacknowledged_records) {
  auto log = open_log();
  const auto messages = make_messages(0, 5);
  ASSERT_FALSE(append(*log, messages));
  auto first = read_all(*log, 2);
  ASSERT_EQ(first.size(), 5u);
  ASSERT_FALSE(log->acknowledge(first[1].position));
  ASSERT_FALSE(log->rewind());
  const auto again = read_all(*log, 10);
  ASSERT_EQ(again.size(), 3u);
  EXPECT_TRUE(same_message(again[0].msg, messages[2]));
  EXPECT_EQ(again[0].position, first[2].position);
}

TEST_F(buffer_log_test, a_second_concurrent_read_is_busy) {
  auto log = open_log();
  ASSERT_FALSE(append(*log, make_messages(0, 5)));
  const auto [ec1, ec2] = run([&]() -> awaitable<std::pair<std::error_code, std::error_code>> {
    std::error_code first;
    bool first_done = false;
    log->read_batch(10, [&](std::error_code ec, std::vector<buffered_record>) {
      first = ec;
      first_done = true;
    });
    auto [ec, records] = co_await log->read_batch(10, tuple_awaitable);
    co_await test::eventually([&] { return first_done; });
    co_return std::pair{first, ec};
  }());
  EXPECT_FALSE(ec1) << "the first read wins";
  EXPECT_EQ(ec2, errc::busy);
}

TEST_F(buffer_log_test, append_beyond_max_bytes_fails_at_once_and_writes_nothing) {
  buffer_options o = fast_options();
  const auto messages = make_messages(0, 5);
  std::vector<std::size_t> size;
  for (const auto& m : messages)
    size.push_back(encoded_size(m));
  o.max_total_bytes = segment_header_size + size[0] + size[1] + size[2] + size[3] / 2;
  auto log = open_log(o);
  ASSERT_FALSE(append(*log, {messages[0], messages[1]}));
  // Two more would exceed the bound: neither is written, although one would fit.
  EXPECT_EQ(append(*log, {messages[2], messages[3]}), errc::buffer_full);
  const auto seg = files_with_suffix(tmp_.path(), ".seg");
  ASSERT_EQ(seg.size(), 1u);
  EXPECT_EQ(fs::file_size(seg[0]), segment_header_size + size[0] + size[1]);
  EXPECT_EQ(log->stats().pending_records, 2u);
  ASSERT_FALSE(append(*log, {messages[2]}));
  EXPECT_EQ(append(*log, {messages[3]}), errc::buffer_full);

  // Acknowledged and deleted segments free the space.
  const auto records = read_all(*log, 10);
  ASSERT_EQ(records.size(), 3u);
  ASSERT_FALSE(log->acknowledge(records.back().position));
  ASSERT_TRUE(eventually([&] { return log->stats().disk_bytes == 0; }));
  EXPECT_FALSE(append(*log, make_messages(3, 2)));
}

TEST_F(buffer_log_test, empty_append_succeeds_and_oversized_record_is_rejected) {
  auto log = open_log();
  EXPECT_FALSE(append(*log, {}));
  message huge = make_message(1);
  huge.payload.assign(max_record_body + 1, 'x');
  EXPECT_EQ(append(*log, {huge}), errc::record_too_large);
  EXPECT_EQ(log->stats().pending_records, 0u);
}

TEST_F(buffer_log_test, fsync_always_completes_after_the_covering_fsync) {
  buffer_options o;
  o.fsync = fsync_policy::always;
  auto log = open_log(o);
  ASSERT_FALSE(append(*log, make_messages(0, 1)));
  EXPECT_EQ(log->stats().fsyncs_total, 1u) << "the append waited for its fsync";
  ASSERT_FALSE(append(*log, make_messages(1, 1)));
  EXPECT_EQ(log->stats().fsyncs_total, 2u);
}

TEST_F(buffer_log_test, fsync_interval_completes_before_the_periodic_fsync) {
  buffer_options o;
  o.fsync = fsync_policy::interval;
  o.flush_interval = std::chrono::milliseconds(300);
  auto log = open_log(o);
  ASSERT_FALSE(append(*log, make_messages(0, 3)));
  EXPECT_EQ(log->stats().fsyncs_total, 0u) << "completed once written";
  EXPECT_EQ(read_all(*log, 10).size(), 3u) << "and is readable before the fsync";
  ASSERT_TRUE(eventually([&] { return log->stats().fsyncs_total == 1; }));
}

TEST_F(buffer_log_test, fsync_never_does_not_fsync_until_close) {
  auto log = open_log(fast_options());
  for (int i = 0; i < 5; ++i)
    ASSERT_FALSE(append(*log, make_messages(i, 1)));
  EXPECT_EQ(log->stats().fsyncs_total, 0u);
  log->close();
  EXPECT_EQ(log->stats().fsyncs_total, 1u) << "close() flushes whatever the policy";
}

TEST_F(buffer_log_test, concurrent_appends_share_fsyncs) {
  buffer_options o;
  o.fsync = fsync_policy::always;
  auto log = open_log(o);
  constexpr int appenders = 200;
  int done = 0;
  int failed = 0;
  for (int i = 0; i < appenders; ++i) {
    asio::co_spawn(
        ioc_,
        [&, i]() -> awaitable<void> {
          auto [ec] = co_await log->append(make_messages(i, 1), tuple_awaitable);
          if (ec)
            ++failed;
          ++done;
        },
        asio::detached);
  }
  ASSERT_TRUE(eventually([&] { return done == appenders; }));
  EXPECT_EQ(failed, 0);
  const auto st = log->stats();
  EXPECT_EQ(st.pending_records, static_cast<std::uint64_t>(appenders));
  EXPECT_LT(st.fsyncs_total, static_cast<std::uint64_t>(appenders) / 4) << "group commit";
  EXPECT_EQ(read_all(*log, 1000).size(), static_cast<std::size_t>(appenders));
}

TEST_F(buffer_log_test, close_completes_queued_appends_and_later_calls_fail) {
  auto log = open_log();
  int completed = 0;
  for (int i = 0; i < 20; ++i) {
    log->append(make_messages(i, 1), [&](std::error_code ec) {
      EXPECT_FALSE(ec);
      ++completed;
    });
  }
  log->close();
  ioc_.restart();
  ioc_.run_for(std::chrono::seconds(2));
  EXPECT_EQ(completed, 20);
  EXPECT_EQ(append(*log, make_messages(0, 1)), errc::closed);
  log.reset();
  auto reopened = open_log();
  EXPECT_EQ(reopened->stats().pending_records, 20u);
}

TEST_F(buffer_log_test, a_second_process_cannot_open_the_same_log) {
  auto log = open_log();
  std::error_code ec;
  auto second = buffer_log::open(tmp_.path(), fast_options(), ioc_.get_executor(), ec);
  EXPECT_EQ(ec, errc::log_locked);
  EXPECT_EQ(second, nullptr);
  log->close();
  auto third = buffer_log::open(tmp_.path(), fast_options(), ioc_.get_executor(), ec);
  EXPECT_FALSE(ec);
}

TEST_F(buffer_log_test, restart_resumes_after_the_persisted_ack_cursor) {
  const auto messages = make_messages(0, 10);
  {
    auto log = open_log();
    ASSERT_FALSE(append(*log, messages));
    const auto records = read_all(*log, 4);
    ASSERT_EQ(records.size(), 10u);
    ASSERT_FALSE(log->acknowledge(records[3].position));
  }
  {
    auto log = open_log();
    EXPECT_EQ(log->stats().pending_records, 6u);
    EXPECT_EQ(log->stats().oldest_pending_created_ms, messages[4].created_ms);
    const auto records = read_all(*log, 100);
    ASSERT_EQ(records.size(), 6u);
    EXPECT_TRUE(same_message(records[0].msg, messages[4]));
    ASSERT_FALSE(append(*log, make_messages(10, 1)));
    const auto more = read_all(*log, 100);
    ASSERT_EQ(more.size(), 1u);
    EXPECT_GT(more[0].position.segment, records[0].position.segment)
        << "a reopened log writes to a new segment";
  }
  // Without the ack file every record of the partially acknowledged segment comes back:
  // replay is at-least-once, and PostgreSQL deduplicates by id.
  fs::remove(tmp_.path() / "ack");
  auto log = open_log();
  EXPECT_EQ(log->stats().pending_records, 11u);
  EXPECT_EQ(read_all(*log, 100).size(), 11u);
}

// A log of 5 records from a first run, reopened after `tamper` changed its directory, then 30
// more records across several 1 KiB segments: all 35 must come back, in order.
void expect_a_second_run_keeps_everything(buffer_log_test& t, const std::function<void()>& tamper,
                                          const std::function<void(buffer_log&)>& check) {
  const auto first = make_messages(0, 5);
  {
    auto log = t.open_log();
    ASSERT_FALSE(t.append(*log, first));
  }
  tamper();
  buffer_options o = buffer_log_test::fast_options();
  o.segment_bytes = 1024;
  auto log = t.open_log(o);
  check(*log);
  const auto second = make_messages(100, 30, 40);
  for (std::size_t i = 0; i < second.size(); i += 5)
    ASSERT_FALSE(t.append(*log, {second.begin() + i, second.begin() + i + 5}));
  const auto records = t.read_all(*log, 100);
  ASSERT_EQ(records.size(), first.size() + second.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& want = i < first.size() ? first[i] : second[i - first.size()];
    EXPECT_TRUE(same_message(records[i].msg, want)) << i;
    if (i > 0) {
      EXPECT_LT(records[i - 1].position, records[i].position) << i;
    }
  }
}

TEST_F(buffer_log_test, a_name_taken_by_something_else_is_skipped_never_overwritten) {
  // Found by a fuzzing helper: a directory named like the next segment made every append fail
  // (the same id retried for ever), and a segment file was published by renaming over
  // whatever had its name. The first run writes segment 1; the second would write 2, then 3.
  const auto taken = tmp_.path() / layout::file_name(2, ".seg");
  expect_a_second_run_keeps_everything(
      *this, [&] { fs::create_directory(taken); }, [](buffer_log&) {});
  EXPECT_TRUE(fs::is_directory(taken));
}

TEST_F(buffer_log_test, a_file_with_an_impossible_segment_id_cannot_wrap_the_ids) {
  // A junk file named with the largest id: counted, it made the next id wrap to 0, new
  // records were replayed before the old ones, and segment 1 was later overwritten.
  expect_a_second_run_keeps_everything(
      *this, [&] { std::ofstream(tmp_.path() / layout::file_name(UINT64_MAX, ".seg")) << "junk"; },
      [](buffer_log& log) { EXPECT_EQ(log.stats().quarantined_segments_total, 1u); });
}

TEST_F(buffer_log_test, restart_after_acks_across_segments_deletes_them_and_keeps_order) {
  buffer_options o = fast_options();
  o.segment_bytes = 600;
  const auto messages = make_messages(0, 30, 30);
  std::size_t acked = 0;
  {
    auto log = open_log(o);
    for (const auto& m : messages)
      ASSERT_FALSE(append(*log, {m}));
    const auto records = read_all(*log, 100);
    acked = 17;
    ASSERT_FALSE(log->acknowledge(records[acked - 1].position));
  }
  auto log = open_log(o);
  EXPECT_EQ(log->stats().pending_records, messages.size() - acked);
  const auto records = read_all(*log, 5);
  ASSERT_EQ(records.size(), messages.size() - acked);
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_TRUE(same_message(records[i].msg, messages[acked + i])) << i;
  }
  EXPECT_EQ(files_with_suffix(tmp_.path(), ".seg").size(), log->stats().segments);
}

TEST_F(buffer_log_test, failed_records_are_quarantined_counted_and_retried) {
  auto log = open_log();
  const auto bad = make_messages(0, 3);
  auto ec = run([&]() -> awaitable<std::error_code> {
    auto [e] =
        co_await log->quarantine_failed(bad, "null value in column \"queue\"", tuple_awaitable);
    co_return e;
  }());
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(log->stats().failed_records, 3u);
  EXPECT_EQ(files_with_suffix(tmp_.path() / "failed", ".failed").size(), 1u);
  EXPECT_EQ(log->stats().pending_records, 0u) << "failed records are not replayed";
  log.reset();

  log = open_log();
  EXPECT_EQ(log->stats().failed_records, 3u) << "counted again at recovery";
  const auto [retry_ec, retried] =
      run([&]() -> awaitable<std::tuple<std::error_code, std::size_t>> {
        co_return co_await log->retry_failed(tuple_awaitable);
      }());
  ASSERT_FALSE(retry_ec) << retry_ec.message();
  EXPECT_EQ(retried, 3u);
  EXPECT_EQ(log->stats().failed_records, 0u);
  const auto records = read_all(*log, 10);
  ASSERT_EQ(records.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(same_message(records[i].msg, bad[i]));
  ASSERT_TRUE(
      eventually([&] { return files_with_suffix(tmp_.path() / "failed", ".failed").empty(); }));
}

TEST_F(buffer_log_test, a_failed_write_fails_the_whole_append_and_leaves_no_partial_record) {
  auto log = open_log();
  ASSERT_FALSE(append(*log, make_messages(0, 1)));
  const auto seg = files_with_suffix(tmp_.path(), ".seg");
  ASSERT_EQ(seg.size(), 1u);
  const auto size_before = fs::file_size(seg[0]);

  // RLIMIT_FSIZE makes the writer's pwrite fail with EFBIG past the limit.
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  rlimit tight = old;
  tight.rlim_cur = size_before + 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tight), 0);
  const auto ec = append(*log, make_messages(1, 3));
  ::setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_EQ(ec, std::error_code(EFBIG, std::system_category())) << ec.message();
  EXPECT_EQ(fs::file_size(seg[0]), size_before) << "the partial write was cut back";
  EXPECT_EQ(log->stats().pending_records, 1u);

  ASSERT_FALSE(append(*log, make_messages(4, 1)));
  const auto records = read_all(*log, 10);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].msg.created_ms, make_message(0).created_ms);
  EXPECT_EQ(records[1].msg.created_ms, make_message(4).created_ms);
  EXPECT_GT(records[1].position.segment, records[0].position.segment)
      << "the segment that failed is not written again";
  log.reset();
  auto reopened = open_log();
  EXPECT_EQ(reopened->stats().pending_records, 2u);
  EXPECT_EQ(reopened->stats().truncated_tails_total, 0u);
}

TEST_F(buffer_log_test, segments_rotate_by_age) {
  buffer_options o = fast_options();
  o.segment_max_age = std::chrono::milliseconds(1);
  auto log = open_log(o);
  ASSERT_FALSE(append(*log, make_messages(0, 1)));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_FALSE(append(*log, make_messages(1, 1)));
  EXPECT_EQ(log->stats().segments, 2u);
  const auto records = read_all(*log, 10);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].position.segment, records[0].position.segment + 1);
}

TEST_F(buffer_log_test, corruption_found_during_replay_sets_aside_only_the_bad_record) {
  auto log = open_log();
  const auto messages = make_messages(0, 5);
  ASSERT_FALSE(append(*log, messages));
  // Damage record 2 behind the log's back, after it was committed.
  const auto seg = files_with_suffix(tmp_.path(), ".seg").at(0);
  std::uint64_t bad = segment_header_size + encoded_size(messages[0]) + encoded_size(messages[1]);
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(bad + record_header_size + 2));
    f.put('\x7f');
  }
  const auto records = read_all(*log, 10);
  ASSERT_EQ(records.size(), 4u) << "records before and after the damage are replayed";
  EXPECT_TRUE(same_message(records[2].msg, messages[3]));
  EXPECT_EQ(log->stats().unreadable_ranges_total, 1u);
  EXPECT_EQ(log->stats().pending_records, 4u);

  ASSERT_FALSE(log->acknowledge(records[3].position));
  // The damaged record was copied to quarantine/; the drained segment is deleted as usual.
  ASSERT_TRUE(eventually([&] { return log->stats().segments == 0; }));
  ASSERT_TRUE(eventually([&] { return files_with_suffix(tmp_.path(), ".seg").empty(); }));
  const auto kept = files_with_suffix(tmp_.path() / "quarantine", "");
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].filename().string(),
            seg.filename().string() + "." + std::to_string(bad) + ".bad");
  EXPECT_EQ(log->stats().pending_records, 0u);
}

TEST_F(buffer_log_test, reads_interleave_with_appends) {
  buffer_options o = fast_options();
  o.segment_bytes = 2048;
  auto log = open_log(o);
  constexpr int total = 500;
  const auto messages = make_messages(0, total, 20);
  const auto seen = run([&]() -> awaitable<std::vector<buffered_record>> {
    int appended = 0;
    std::vector<buffered_record> got;
    asio::co_spawn(
        ioc_,
        [&]() -> awaitable<void> {
          for (int i = 0; i < total; i += 10) {
            co_await log->append({messages.begin() + i, messages.begin() + i + 10}, use_awaitable);
            appended += 10;
          }
        },
        asio::detached);
    asio::steady_timer timer(ioc_);
    while (got.size() < static_cast<std::size_t>(total)) {
      auto [ec, records] = co_await log->read_batch(37, tuple_awaitable);
      EXPECT_FALSE(ec);
      if (records.empty()) {
        timer.expires_after(std::chrono::milliseconds(1));
        co_await timer.async_wait(use_awaitable);
        continue;
      }
      EXPECT_FALSE(log->acknowledge(records.back().position));
      for (auto& r : records)
        got.push_back(std::move(r));
    }
    co_return got;
  }());
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(total));
  for (int i = 0; i < total; ++i)
    ASSERT_TRUE(same_message(seen[i].msg, messages[i])) << i;
  ASSERT_TRUE(eventually([&] { return log->stats().segments == 0; }));
  EXPECT_EQ(log->stats().pending_records, 0u);
}

}  // namespace
}  // namespace sluice::buffer
