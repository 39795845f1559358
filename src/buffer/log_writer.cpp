#include "sluice/buffer/log_writer.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace sluice::buffer {
namespace {

constexpr std::uint64_t max_round_bytes = 8u << 20;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

log_writer::log_writer(std::filesystem::path dir, const buffer_options& options,
                       std::uint64_t next_segment_id, sink report)
    : dir_(std::move(dir)),
      options_(options),
      round_cap_(std::min(std::max<std::uint64_t>(options.segment_bytes, 1), max_round_bytes)),
      sink_(std::move(report)),
      next_segment_id_(next_segment_id) {
  thread_ = std::thread([this] { run(); });
}

log_writer::~log_writer() {
  close();
}

void log_writer::submit(append_request request) {
  {
    std::lock_guard lock(mutex_);
    queue_.emplace_back(std::move(request));
  }
  wake_.notify_one();
}

void log_writer::seal_if_drained(std::uint64_t segment, std::uint64_t end) {
  {
    std::lock_guard lock(mutex_);
    queue_.emplace_back(drain_request{segment, end});
  }
  wake_.notify_one();
}

void log_writer::close() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable())
      return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

void log_writer::run() {
  std::deque<item> items;
  std::unique_lock lock(mutex_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_)
        break;
      if (sync_due_) {
        wake_.wait_until(lock, *sync_due_);
      } else {
        wake_.wait(lock);
      }
    }
    // Take what fits in one round; an oversized request still goes alone.
    std::uint64_t bytes = 0;
    while (!queue_.empty() && (items.empty() || bytes < round_cap_)) {
      if (const auto* req = std::get_if<append_request>(&queue_.front()))
        bytes += req->bytes;
      items.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    process(items);
    items.clear();
    if (sync_due_ && std::chrono::steady_clock::now() >= *sync_due_) {
      if (auto ec = sync_active()) {
        spdlog::error("buffer: interval fsync failed file={} error={}", active_.path().string(),
                      ec.message());
      }
    }
    lock.lock();
  }
  lock.unlock();
  if (active_.is_open()) {
    if (auto ec = sync_active()) {
      spdlog::error("buffer: fsync at close failed file={} error={}", active_.path().string(),
                    ec.message());
    }
    active_.close();
  }
}

void log_writer::process(std::deque<item>& items) {
  std::vector<append_request> round;
  for (auto& it : items) {
    if (auto* req = std::get_if<append_request>(&it)) {
      round.push_back(std::move(*req));
      continue;
    }
    write_round(round);
    round.clear();
    const auto& drain = std::get<drain_request>(it);
    if (active_.is_open() && active_.id() == drain.segment && active_.written() == drain.end) {
      // Everything in it was acknowledged, so nothing needs to reach the disk any more.
      writer_report report;
      report.sealed.push_back({active_.id(), active_.written()});
      active_.close();
      sync_due_.reset();
      sink_(std::move(report));
    }
  }
  write_round(round);
}

std::error_code log_writer::sync_active() {
  sync_due_.reset();
  if (!active_.is_open() || active_.flushed() == active_.written())
    return {};
  fsyncs_.fetch_add(1, std::memory_order_relaxed);
  return active_.sync();
}

void log_writer::seal_active(writer_report& report) {
  if (options_.fsync != fsync_policy::never) {
    if (auto ec = sync_active()) {
      spdlog::error("buffer: fsync before sealing failed file={} error={}", active_.path().string(),
                    ec.message());
    }
  }
  report.sealed.push_back({active_.id(), active_.written()});
  active_.close();
  sync_due_.reset();
}

void log_writer::rotate_if_due(std::uint64_t incoming, writer_report& report) {
  if (!active_.is_open())
    return;
  const bool has_records = active_.written() > segment_header_size;
  const bool full = has_records && active_.written() + incoming > options_.segment_bytes;
  const bool old = has_records && std::chrono::steady_clock::now() - active_.opened_at() >=
                                      options_.segment_max_age;
  if (full || old)
    seal_active(report);
}

void log_writer::write_round(std::vector<append_request>& round) {
  if (round.empty())
    return;
  rounds_.fetch_add(1, std::memory_order_relaxed);
  writer_report report;
  report.appends.resize(round.size());
  std::uint64_t total = 0;
  for (const auto& req : round)
    total += req.bytes;

  rotate_if_due(total, report);
  std::error_code ec;
  if (!active_.is_open()) {
    // An id whose name is taken (a stray file or directory recovery did not count) is
    // skipped: a bounded number of them, then the append fails as for any other error.
    for (int attempt = 0; attempt < 64; ++attempt) {
      const segment_header header{file_kind::log_segment, next_segment_id_, now_ms()};
      ec = active_.create(dir_, header, ".seg", options_.fsync != fsync_policy::never);
      if (ec != std::errc::file_exists)
        break;
      spdlog::warn("buffer: segment name taken, skipping id dir={} id={}", dir_.string(),
                   next_segment_id_);
      ++next_segment_id_;
    }
    if (ec) {
      spdlog::error("buffer: cannot create segment dir={} id={} error={}", dir_.string(),
                    next_segment_id_, ec.message());
    } else {
      ++next_segment_id_;
    }
  }

  if (!ec) {
    const std::uint64_t start = active_.written();
    encode_buf_.clear();
    encode_buf_.reserve(total);
    for (std::size_t i = 0; i < round.size(); ++i) {
      auto& res = report.appends[i];
      res.segment = active_.id();
      res.begin = start + encode_buf_.size();
      for (const auto& m : round[i].messages)
        encode_message_record(m, encode_buf_);
      res.end = start + encode_buf_.size();
      res.records = round[i].messages.size();
      res.first_created_ms = round[i].messages.empty() ? 0 : round[i].messages.front().created_ms;
    }
    ec = active_.append(encode_buf_);
    if (!ec && options_.fsync == fsync_policy::always) {
      fsyncs_.fetch_add(1, std::memory_order_relaxed);
      ec = active_.sync();
    }
    if (ec) {
      spdlog::error("buffer: append failed file={} offset={} bytes={} error={}",
                    active_.path().string(), start, encode_buf_.size(), ec.message());
      if (auto trunc = active_.truncate(start)) {
        spdlog::error("buffer: cannot cut back failed append file={} error={}",
                      active_.path().string(), trunc.message());
      }
      // After a failed fsync the kernel may have dropped the dirty pages and cleared the error
      // (fsyncgate), so this file is not trusted with more data.
      report.sealed.push_back({active_.id(), start});
      active_.close();
      sync_due_.reset();
    } else if (options_.fsync == fsync_policy::interval && !sync_due_) {
      sync_due_ = std::chrono::steady_clock::now() + options_.flush_interval;
    }
  }
  if (ec) {
    for (auto& res : report.appends)
      res = append_result{ec};
  }
  sink_(std::move(report));
}

}  // namespace sluice::buffer
