#include "sluice/buffer/failed_store.hpp"

#include <fstream>
#include <sstream>

#include "sluice/buffer/buffer_log.hpp"
#include "sluice/buffer/errc.hpp"
#include "sluice/buffer/log_layout.hpp"

#include <gtest/gtest.h>

#include "buffer_test_support.hpp"

namespace sluice::buffer {
namespace {

using namespace test;

// Bytes this process has read with read(2)/pread(2) so far, page cache hits included.
std::uint64_t bytes_read_by_process() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:")
      return value;
  }
  return 0;
}

// Messages of one encoded size.
std::vector<message> same_size(int n) {
  message m = make_message(n, "orders");
  m.namespace_.reset();
  m.task.reset();
  m.trace_id.reset();
  m.transaction_id.reset();
  m.event_us.reset();
  m.payload = "{\"p\":\"" + std::string(400, 'x') + "\"}";
  return {m};
}

class failed_store_test : public log_test_base {
 protected:
  std::tuple<std::error_code, std::size_t, std::size_t> retry(buffer_log& log,
                                                              retry_filter filter) {
    return run([&]() -> asio::awaitable<std::tuple<std::error_code, std::size_t, std::size_t>> {
      co_return co_await log.retry_failed(std::move(filter), asio::as_tuple(asio::use_awaitable));
    }());
  }

  std::vector<fs::path> failed_files() const {
    return files_with_suffix(tmp_.path() / "failed", ".failed");
  }

  std::uint64_t failed_dir_bytes() const {
    std::uint64_t n = 0;
    for (const auto& f : failed_files())
      n += fs::file_size(f);
    return n;
  }
};

TEST_F(failed_store_test, quarantine_at_the_bound_fails_visibly_and_writes_nothing) {
  buffer_options o = fast_options();
  const auto one = same_size(0);
  const std::uint64_t file_bytes = failed_file_size(one, "rejected");
  o.max_failed_bytes = 3 * file_bytes + file_bytes / 2;
  auto log = open_log(o);
  for (int i = 0; i < 3; ++i)
    ASSERT_FALSE(quarantine(*log, same_size(i), "rejected"));
  EXPECT_EQ(log->stats().failed_bytes, 3 * file_bytes);
  EXPECT_EQ(quarantine(*log, same_size(3), "rejected"), errc::failed_full);
  auto st = log->stats();
  EXPECT_EQ(st.failed_full_total, 1u);
  EXPECT_EQ(st.failed_records, 3u);
  EXPECT_EQ(st.failed_bytes, 3 * file_bytes);
  EXPECT_EQ(failed_files().size(), 3u);
  EXPECT_EQ(failed_dir_bytes(), 3 * file_bytes);

  // Bytes are counted again at the next start, so the bound holds across restarts.
  log.reset();
  log = open_log(o);
  EXPECT_EQ(log->stats().failed_bytes, 3 * file_bytes);
  EXPECT_EQ(quarantine(*log, same_size(4), "rejected"), errc::failed_full);
  // Room again once a retry took records back.
  retry_filter f;
  f.max_records = 1;
  auto [ec, retried, remaining] = retry(*log, f);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(retried, 1u);
  EXPECT_EQ(remaining, 2u);
  EXPECT_EQ(log->stats().failed_bytes, 2 * file_bytes);
  EXPECT_FALSE(quarantine(*log, same_size(5), "rejected"));
}

TEST_F(failed_store_test, start_up_counts_failed_records_without_reading_their_payloads) {
  constexpr int files = 20;
  constexpr std::size_t payload = 2 << 20;
  {
    buffer_options o = fast_options();
    o.max_failed_bytes = 0;
    auto log = open_log(o);
    for (int i = 0; i < files; ++i) {
      // Two records per file: frames after the first are found from its length alone.
      ASSERT_FALSE(quarantine(*log, make_messages(2 * i, 2, payload / 2), "rejected"));
    }
  }
  const std::uint64_t on_disk = failed_dir_bytes();
  ASSERT_GT(on_disk, std::uint64_t{files} * payload);
  const std::uint64_t before = bytes_read_by_process();
  auto log = open_log();
  const std::uint64_t read = bytes_read_by_process() - before;
  EXPECT_EQ(log->stats().failed_records, std::uint64_t{2 * files});
  EXPECT_EQ(log->stats().failed_bytes, on_disk);
  EXPECT_LT(read, std::uint64_t{64} << 10) << "of " << on_disk << " bytes in failed/";
}

TEST_F(failed_store_test, retry_takes_bounded_batches_filtered_by_queue_and_reason) {
  auto log = open_log();
  std::vector<message> orders_null, emails_null, orders_json;
  for (int i = 0; i < 4; ++i)
    orders_null.push_back(make_message(i, "orders"));
  for (int i = 10; i < 13; ++i)
    emails_null.push_back(make_message(i, "emails"));
  for (int i = 20; i < 22; ++i)
    orders_json.push_back(make_message(i, "orders"));
  // One file mixing queues, so a queue filter has to split it.
  std::vector<message> mixed{orders_null[0], emails_null[0], orders_null[1]};
  const std::string null_reason = "SQLSTATE 23502: null value in column";
  const std::string json_reason = "SQLSTATE 22P02: invalid input syntax for type json";
  ASSERT_FALSE(quarantine(*log, mixed, null_reason));
  ASSERT_FALSE(quarantine(*log, {orders_null[2], orders_null[3]}, null_reason));
  ASSERT_FALSE(quarantine(*log, {emails_null[1], emails_null[2]}, null_reason));
  ASSERT_FALSE(quarantine(*log, orders_json, json_reason));
  ASSERT_EQ(log->stats().failed_records, 9u);

  retry_filter emails;
  emails.queue = "emails";
  emails.max_records = 2;
  auto [ec, retried, remaining] = retry(*log, emails);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(retried, 2u);
  EXPECT_EQ(remaining, 1u);
  auto records = read_all(*log, 100);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(same_message(records[0].msg, emails_null[0]));
  EXPECT_TRUE(same_message(records[1].msg, emails_null[1]));
  ASSERT_FALSE(log->acknowledge(records.back().position));
  EXPECT_EQ(log->stats().failed_records, 7u);
  EXPECT_EQ(log->stats().failed_bytes, failed_dir_bytes());

  retry_filter json;
  json.reason_substring = "22P02";
  json.max_records = 0;  // only counts
  std::tie(ec, retried, remaining) = retry(*log, json);
  ASSERT_FALSE(ec);
  EXPECT_EQ(retried, 0u);
  EXPECT_EQ(remaining, 2u);
  json.max_records = 100;
  std::tie(ec, retried, remaining) = retry(*log, json);
  ASSERT_FALSE(ec);
  EXPECT_EQ(retried, 2u);
  EXPECT_EQ(remaining, 0u);
  records = read_all(*log, 100);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(same_message(records[0].msg, orders_json[0]));
  ASSERT_FALSE(log->acknowledge(records.back().position));

  // Without a filter, a batch takes the oldest first and says how many are left.
  retry_filter batch;
  batch.max_records = 3;
  std::tie(ec, retried, remaining) = retry(*log, batch);
  ASSERT_FALSE(ec);
  EXPECT_EQ(retried, 3u);
  EXPECT_EQ(remaining, 2u);
  records = read_all(*log, 100);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_TRUE(same_message(records[0].msg, orders_null[0]));
  EXPECT_TRUE(same_message(records[1].msg, orders_null[1]));
  EXPECT_TRUE(same_message(records[2].msg, orders_null[2]));

  // The rest survives a restart as it is, then the old all-at-once call takes it.
  log.reset();
  log = open_log();
  EXPECT_EQ(log->stats().failed_records, 2u);
  const auto [all_ec, all] =
      run([&]() -> asio::awaitable<std::tuple<std::error_code, std::size_t>> {
        co_return co_await log->retry_failed(asio::as_tuple(asio::use_awaitable));
      }());
  ASSERT_FALSE(all_ec);
  EXPECT_EQ(all, 2u);
  EXPECT_EQ(log->stats().failed_records, 0u);
  EXPECT_EQ(log->stats().failed_bytes, 0u);
  EXPECT_TRUE(failed_files().empty());
}

TEST_F(failed_store_test, a_retry_that_cannot_append_leaves_failed_as_it_was) {
  buffer_options o = fast_options();
  o.max_total_bytes = 4096;
  auto log = open_log(o);
  ASSERT_FALSE(quarantine(*log, make_messages(0, 2, 3000), "rejected"));
  const auto before = read_file(failed_files().at(0));
  auto [ec, retried, remaining] = retry(*log, retry_filter{});
  EXPECT_EQ(ec, errc::buffer_full);
  EXPECT_EQ(retried, 0u);
  EXPECT_EQ(remaining, 2u);
  EXPECT_EQ(log->stats().failed_records, 2u);
  EXPECT_EQ(read_file(failed_files().at(0)), before);
}

TEST_F(failed_store_test, damaged_failed_files_give_back_what_they_can_and_go_to_quarantine) {
  auto log = open_log();
  const auto messages = make_messages(0, 3);
  ASSERT_FALSE(quarantine(*log, messages, "rejected"));
  ASSERT_FALSE(quarantine(*log, make_messages(3, 1), "rejected"));
  const auto files = failed_files();
  ASSERT_EQ(files.size(), 2u);
  std::string bytes = read_file(files[0]);
  bytes[bytes.size() - 3] ^= 0x01;  // inside the last record of the first file
  write_file(files[0], bytes);
  write_file(files[1], "garbage");
  log.reset();
  log = open_log();

  const auto [ec, retried] =
      run([&]() -> asio::awaitable<std::tuple<std::error_code, std::size_t>> {
        co_return co_await log->retry_failed(asio::as_tuple(asio::use_awaitable));
      }());
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(retried, 2u);
  const auto records = read_all(*log, 10);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(same_message(records[1].msg, messages[1]));
  EXPECT_TRUE(failed_files().empty());
  EXPECT_EQ(log->stats().failed_records, 0u);
  EXPECT_EQ(log->stats().failed_bytes, 0u);
  EXPECT_EQ(files_with_suffix(tmp_.path() / "quarantine", ".failed").size(), 2u);
}

}  // namespace
}  // namespace sluice::buffer
