#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <variant>
#include <vector>

#include "sluice/buffer/buffer_options.hpp"
#include "sluice/buffer/segment_appender.hpp"
#include "sluice/core/message.hpp"

namespace sluice::buffer {

struct append_request {
  std::vector<message> messages;
  std::size_t bytes = 0;  // sum of encoded_size(), computed by the submitter
};

struct append_result {
  std::error_code ec;
  std::uint64_t segment = 0;
  std::uint64_t begin = 0;  // byte range of the request's records in the segment
  std::uint64_t end = 0;
  std::size_t records = 0;
  std::int64_t first_created_ms = 0;
};

struct sealed_segment {
  std::uint64_t id = 0;
  std::uint64_t end = 0;  // final size: nothing is ever written to it again
};

// What one step of the writer did. Every `sealed` segment was closed before any of `appends`
// took effect; `appends` are in submission order.
struct writer_report {
  std::vector<sealed_segment> sealed;
  std::vector<append_result> appends;
};

// The group-commit writer of one log: a dedicated thread owns the active segment. Each round it
// takes everything submitted since the previous round (up to a byte cap), encodes it, writes it
// with one pwrite() and, under fsync=always, makes it durable with one fdatasync() before
// reporting the round. So N appends in flight cost one fsync, not N.
//
// Segments are created lazily on the first write after a rotation, so an idle, drained log has
// no active segment. A segment is rotated when the next round would take it past
// segment_bytes, or when it is older than segment_max_age. If a write or fsync fails, the
// round's appends fail, the segment is cut back to where the round began and sealed, and the
// next round starts a new segment.
class log_writer {
 public:
  using sink = std::function<void(writer_report)>;  // runs on the writer thread

  log_writer(std::filesystem::path dir, const buffer_options& options,
             std::uint64_t next_segment_id, sink report);
  log_writer(const log_writer&) = delete;
  log_writer& operator=(const log_writer&) = delete;
  ~log_writer();

  // Thread-safe. Results arrive through the sink in submission order.
  void submit(append_request request);
  // Seals the active segment if it is `segment` and still ends at `end` (everything in it was
  // acknowledged), so it can be deleted. Ordered with appends: only appends submitted earlier
  // can keep it open.
  void seal_if_drained(std::uint64_t segment, std::uint64_t end);
  // Writes what is queued, fsyncs (whatever the policy), reports, and joins the thread.
  void close();

  std::uint64_t fsyncs() const { return fsyncs_.load(std::memory_order_relaxed); }
  std::uint64_t rounds() const { return rounds_.load(std::memory_order_relaxed); }

 private:
  struct drain_request {
    std::uint64_t segment;
    std::uint64_t end;
  };
  using item = std::variant<append_request, drain_request>;

  void run();
  void process(std::deque<item>& items);
  void write_round(std::vector<append_request>& round);
  void rotate_if_due(std::uint64_t incoming, writer_report& report);
  void seal_active(writer_report& report);
  std::error_code sync_active();

  const std::filesystem::path dir_;
  const buffer_options options_;
  const std::uint64_t round_cap_;
  sink sink_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<item> queue_;
  bool stopping_ = false;

  // Owned by the writer thread.
  segment_appender active_;
  std::uint64_t next_segment_id_;
  std::string encode_buf_;
  std::optional<std::chrono::steady_clock::time_point> sync_due_;

  std::atomic<std::uint64_t> fsyncs_{0};
  std::atomic<std::uint64_t> rounds_{0};
  std::thread thread_;
};

}  // namespace sluice::buffer
