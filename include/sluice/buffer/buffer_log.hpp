#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "sluice/buffer/buffer_options.hpp"
#include "sluice/buffer/record_position.hpp"
#include "sluice/core/message.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

namespace sluice::buffer {

namespace detail {
class log_core;
}

struct buffer_stats {
  std::uint64_t pending_records = 0;  // appended (or recovered) and not yet acknowledged
  std::uint64_t pending_bytes = 0;    // their framed size on disk
  std::uint64_t segments = 0;         // segment files of the log
  std::uint64_t disk_bytes = 0;       // what max_total_bytes bounds, queued appends included
  // created_ms of the first pending record in log order (what replay is behind by).
  std::optional<std::int64_t> oldest_pending_created_ms;
  std::uint64_t failed_records = 0;  // in failed/
  std::uint64_t appended_total = 0;  // records appended since open
  std::uint64_t acked_total = 0;     // records acknowledged since open
  std::uint64_t truncated_tails_total = 0;
  std::uint64_t quarantined_segments_total = 0;
  // Corrupt ranges set aside (proven by a failed check, never by an I/O error) by recovery at
  // open or by replay after it; the records in them will never be replayed.
  std::uint64_t unreadable_ranges_total = 0;
  std::uint64_t unreadable_records_total = 0;  // in those ranges (segment_reader::count_frames)
  // Bytes copied or moved to quarantine/ since open, recovery included: torn tails, corrupt
  // ranges, unreadable segments.
  std::uint64_t quarantined_bytes_total = 0;
  // read_batch calls that failed with an I/O error and skipped nothing (retried later).
  std::uint64_t read_errors_total = 0;
  std::uint64_t failed_bytes = 0;       // size of failed/ on disk, writes in flight included
  std::uint64_t failed_full_total = 0;  // quarantine calls refused at max_failed_bytes
  std::uint64_t fsyncs_total = 0;
};

// Which records of failed/ a retry takes, oldest file first.
struct retry_filter {
  std::optional<std::string> queue;             // exactly this queue
  std::optional<std::string> reason_substring;  // the failure reason contains this
  std::size_t max_records = 1000;  // at most this many per call; 0 only counts what matches
};

struct retry_result {
  std::size_t retried = 0;
  std::size_t remaining = 0;  // matching records left in failed/
};

// A durable, append-only local log of messages, replayed in FIFO order.
//
// Threads: every member function is called on the loop (the executor given to open(), one
// thread or a strand); completions run there too, or on the handler's associated executor.
// Appends go to a dedicated writer thread (log_writer: group commit); reads, deletes, the ack
// cursor and failed/ run on one blocking thread. The loop never does file I/O except in open()
// and close().
//
// Positions: an append completes once its records are written (and, with fsync=always,
// fdatasynced); only then can read_batch return them. read_batch hands out records after the
// read cursor; acknowledge(p) moves the ack cursor past p. A segment whose records are all
// acknowledged is deleted; if it is the one being written, the writer seals it first. After a
// restart replay resumes at the persisted ack cursor (records acknowledged after its last
// write are replayed again; PostgreSQL deduplicates them by id).
class buffer_log {
 public:
  using executor_type = boost::asio::any_io_executor;

  // Recovers `dir` (log_recovery.hpp), takes its lock file and starts the writer. Blocking:
  // call it at start-up, before the loop runs, or from a blocking thread. Fails on a directory
  // that cannot be created or listed, or errc::log_locked.
  static std::unique_ptr<buffer_log> open(const std::filesystem::path& dir,
                                          const buffer_options& options, executor_type executor,
                                          std::error_code& ec);

  buffer_log(const buffer_log&) = delete;
  buffer_log& operator=(const buffer_log&) = delete;
  ~buffer_log();  // close()

  // Appends all of `messages` or none: void(std::error_code). Fails at once with
  // errc::buffer_full when the log would exceed max_total_bytes, errc::record_too_large,
  // errc::closed; or with the errno of a failed write/fsync. Not cancellable: once started it
  // always completes.
  template <typename Token>
  auto append(std::vector<message> messages, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, std::vector<message> m) {
          start_append(std::move(m), append_handler(std::move(handler)));
        },
        token, std::move(messages));
  }

  // The next records after the read cursor, up to max_records, in log order:
  // void(std::error_code, std::vector<buffered_record>). An empty vector means nothing is
  // pending. One read at a time (errc::busy). An I/O error that does not prove corruption
  // (errc.hpp: proves_corruption; EMFILE, ENOMEM, EIO, ...) completes with that error and no
  // records: nothing is skipped and the cursors do not move, so a later read retries. Records
  // proven corrupt are set aside (replay_reader.hpp) and counted in unreadable_ranges_total;
  // the read goes on after them.
  template <typename Token>
  auto read_batch(std::size_t max_records, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code, std::vector<buffered_record>)>(
        [this](auto handler, std::size_t n) { start_read(n, read_handler(std::move(handler))); },
        token, max_records);
  }

  // Marks every record up to and including `last` (a position read_batch returned) as
  // replayed. Positions already acknowledged are fine; others are errc::unknown_position.
  std::error_code acknowledge(const record_position& last);

  // Moves the read cursor back to the ack cursor, so the next read_batch returns the records
  // that were read but not acknowledged (after a failed replay batch). errc::busy during a read.
  std::error_code rewind();

  // Writes records PostgreSQL rejected permanently to failed/ with `reason`, durably, as one
  // file: void(std::error_code). errc::failed_full (logged, counted) when failed/ would exceed
  // max_failed_bytes: the caller keeps the records pending in the log.
  template <typename Token>
  auto quarantine_failed(std::vector<message> records, std::string reason, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, std::vector<message> r, std::string why) {
          start_quarantine(std::move(r), std::move(why), append_handler(std::move(handler)));
        },
        token, std::move(records), std::move(reason));
  }

  // Appends everything in failed/ back to the log, in batches of replay_batch records:
  // void(std::error_code, std::size_t records_retried).
  template <typename Token>
  auto retry_failed(Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code, std::size_t)>(
        [this](auto handler) { start_retry(retry_handler(std::move(handler))); }, token);
  }

  // Appends up to filter.max_records records of failed/ that match `filter` back to the log, in
  // failed/ order, as one append; then removes them from failed/ (a file keeping other records
  // is rewritten without them). void(std::error_code, std::size_t retried, std::size_t
  // remaining), remaining = matching records left in failed/. Memory is bounded by the batch
  // and the files it touches. A crash between the append and the rewrite leaves a record in
  // both places; it is stored once anyway (PostgreSQL deduplicates by message id). errc::busy
  // while another retry runs; the append's errors (errc::buffer_full, ...) leave failed/ as it
  // was.
  template <typename Token>
  auto retry_failed(retry_filter filter, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code, std::size_t, std::size_t)>(
        [this](auto handler, retry_filter f) {
          start_filtered_retry(std::move(f), filtered_retry_handler(std::move(handler)));
        },
        token, std::move(filter));
  }

  buffer_stats stats() const;
  const std::filesystem::path& dir() const;
  executor_type get_executor() const;

  // Writes and fsyncs what is queued, joins the writer and blocking threads and releases the
  // lock. Completions of pending operations are posted to the loop and run after this returns.
  // Later calls fail with errc::closed.
  void close();

 private:
  using append_handler = boost::asio::any_completion_handler<void(std::error_code)>;
  using read_handler =
      boost::asio::any_completion_handler<void(std::error_code, std::vector<buffered_record>)>;
  using retry_handler = boost::asio::any_completion_handler<void(std::error_code, std::size_t)>;
  using filtered_retry_handler =
      boost::asio::any_completion_handler<void(std::error_code, std::size_t, std::size_t)>;

  explicit buffer_log(std::shared_ptr<detail::log_core> core) : core_(std::move(core)) {}

  void start_append(std::vector<message> messages, append_handler handler);
  void start_read(std::size_t max_records, read_handler handler);
  void start_quarantine(std::vector<message> records, std::string reason, append_handler handler);
  void start_retry(retry_handler handler);
  void start_filtered_retry(retry_filter filter, filtered_retry_handler handler);

  std::shared_ptr<detail::log_core> core_;
};

}  // namespace sluice::buffer
