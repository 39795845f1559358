#include "sluice/buffer/buffer_log.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <fcntl.h>
#include <mutex>
#include <sys/file.h>
#include <unistd.h>

#include "sluice/buffer/ack_cursor.hpp"
#include "sluice/buffer/errc.hpp"
#include "sluice/buffer/failed_store.hpp"
#include "sluice/buffer/log_layout.hpp"
#include "sluice/buffer/log_recovery.hpp"
#include "sluice/buffer/log_writer.hpp"
#include "sluice/buffer/record_format.hpp"
#include "sluice/buffer/replay_reader.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

namespace sluice::buffer {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace detail {
namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A pending operation's handler plus outstanding work on its executor, so the io_context that
// will run the completion does not run out of work while the blocking side is busy.
template <typename Signature>
struct pending_handler {
  asio::any_completion_handler<Signature> handler;
  asio::any_completion_executor work;
};

}  // namespace

class log_core : public std::enable_shared_from_this<log_core> {
 public:
  log_core(fs::path dir, const buffer_options& options, asio::any_io_executor executor, int lock_fd)
      : dir_(std::move(dir)),
        options_(options),
        executor_(std::move(executor)),
        lock_fd_(lock_fd),
        reader_(dir_) {}

  ~log_core() {
    if (lock_fd_ >= 0)
      ::close(lock_fd_);
  }

  void start(const recovery_report& report) {
    for (const auto& r : report.segments) {
      seg_state s;
      s.id = r.id;
      s.end = r.end;
      s.records = r.records;
      s.record_bytes = r.record_bytes;
      s.acked_records = r.acked_records;
      s.acked_bytes = r.acked_bytes;
      s.first_created_ms = r.first_created_ms;
      s.sealed = true;
      pending_records_ += r.records - r.acked_records;
      pending_bytes_ += r.record_bytes - r.acked_bytes;
      disk_bytes_ += r.end;
      segments_.push_back(s);
    }
    ack_ = read_ = report.ack;
    unread_head_created_ms_ = report.head_created_ms;
    truncated_tails_ = report.truncated_tails;
    quarantined_segments_ = report.quarantined_segments;
    failed_records_ = report.failed_records;
    next_failed_id_ = report.next_failed_id;
    if (auto ec = ack_file_.open(dir_)) {
      spdlog::warn("buffer: cannot open ack cursor dir={} error={}", dir_.string(), ec.message());
    }
    std::weak_ptr<log_core> weak = weak_from_this();
    writer_ = std::make_unique<log_writer>(
        dir_, options_, report.next_segment_id, [weak](writer_report r) {
          if (auto self = weak.lock()) {
            asio::post(self->executor_, [self, r = std::move(r)]() mutable {
              self->on_writer_report(std::move(r));
            });
          }
        });
  }

  const fs::path& dir() const { return dir_; }
  const asio::any_io_executor& executor() const { return executor_; }

  void start_append(std::vector<message> messages,
                    asio::any_completion_handler<void(std::error_code)> handler) {
    if (closed_)
      return post_completion(std::move(handler), make_error_code(errc::closed));
    if (messages.empty())
      return post_completion(std::move(handler), std::error_code{});
    std::uint64_t bytes = 0;
    for (const auto& m : messages) {
      const std::size_t n = encoded_size(m);
      if (n - record_header_size > max_record_body) {
        return post_completion(std::move(handler), make_error_code(errc::record_too_large));
      }
      bytes += n;
    }
    if (options_.max_total_bytes != 0 &&
        disk_bytes_ + reserved_bytes_ + bytes > options_.max_total_bytes) {
      return post_completion(std::move(handler), make_error_code(errc::buffer_full));
    }
    reserved_bytes_ += bytes;
    appends_.push_back({track(std::move(handler)), bytes});
    writer_->submit({std::move(messages), bytes});
  }

  void start_read(
      std::size_t max_records,
      asio::any_completion_handler<void(std::error_code, std::vector<buffered_record>)> handler) {
    if (closed_) {
      return post_completion(std::move(handler), make_error_code(errc::closed),
                             std::vector<buffered_record>{});
    }
    if (reading_) {
      return post_completion(std::move(handler), make_error_code(errc::busy),
                             std::vector<buffered_record>{});
    }
    std::vector<read_extent> extents;
    for (const auto& s : segments_) {
      if (s.id < read_.segment)
        continue;
      const std::uint64_t begin = s.id == read_.segment
                                      ? std::max<std::uint64_t>(read_.offset, segment_header_size)
                                      : segment_header_size;
      if (begin < s.end)
        extents.push_back({s.id, begin, s.end});
    }
    if (extents.empty() || max_records == 0) {
      return post_completion(std::move(handler), std::error_code{}, std::vector<buffered_record>{});
    }
    reading_ = true;
    asio::post(blocking_, [self = shared_from_this(), extents = std::move(extents), max_records,
                           op = track(std::move(handler))]() mutable {
      replay_chunk chunk = self->reader_.read(extents, max_records);
      auto& loop = self->executor_;
      asio::post(loop,
                 [self = std::move(self), chunk = std::move(chunk), op = std::move(op)]() mutable {
                   self->on_read(std::move(chunk), std::move(op));
                 });
    });
  }

  std::error_code acknowledge(const record_position& last) {
    if (closed_)
      return errc::closed;
    if (last < ack_)
      return {};
    const auto it = std::lower_bound(
        inflight_.begin(), inflight_.end(), last,
        [](const inflight_entry& e, const record_position& p) { return e.pos < p; });
    if (it == inflight_.end() || it->pos != last || it->skipped)
      return errc::unknown_position;
    const auto count = static_cast<std::size_t>(it - inflight_.begin()) + 1;
    for (std::size_t i = 0; i < count; ++i) {
      const inflight_entry e = inflight_.front();
      inflight_.pop_front();
      if (!e.skipped) {
        if (seg_state* s = find_segment(e.pos.segment)) {
          ++s->acked_records;
          s->acked_bytes += e.bytes;
        }
        --pending_records_;
        pending_bytes_ -= e.bytes;
        --inflight_records_;
        ++acked_total_;
      }
      ack_ = {e.pos.segment, e.end};
    }
    after_ack();
    return {};
  }

  std::error_code rewind() {
    if (closed_)
      return errc::closed;
    if (reading_)
      return errc::busy;
    for (const auto& e : inflight_) {
      if (!e.skipped) {
        unread_head_created_ms_ = e.created_ms;
        break;
      }
    }
    inflight_.clear();
    inflight_records_ = 0;
    read_ = ack_;
    return {};
  }

  void start_quarantine(std::vector<message> records, std::string reason,
                        asio::any_completion_handler<void(std::error_code)> handler) {
    if (closed_)
      return post_completion(std::move(handler), make_error_code(errc::closed));
    if (records.empty())
      return post_completion(std::move(handler), std::error_code{});
    const std::uint64_t id = next_failed_id_++;
    asio::post(blocking_, [self = shared_from_this(), id, records = std::move(records),
                           reason = std::move(reason), op = track(std::move(handler))]() mutable {
      const std::error_code ec = write_failed_file(self->dir_, id, records, reason, now_ms());
      if (ec) {
        spdlog::error("buffer: cannot write failed records dir={} count={} error={}",
                      self->dir_.string(), records.size(), ec.message());
      } else {
        spdlog::warn("buffer: quarantined failed records dir={} file={} count={} reason={}",
                     self->dir_.string(), layout::file_name(id, layout::failed_suffix),
                     records.size(), reason);
      }
      auto& loop = self->executor_;
      asio::post(loop,
                 [self = std::move(self), n = records.size(), ec, op = std::move(op)]() mutable {
                   if (!ec)
                     self->failed_records_ += n;
                   complete(std::move(op), ec);
                 });
    });
  }

  void start_retry(asio::any_completion_handler<void(std::error_code, std::size_t)> handler) {
    if (closed_) {
      return post_completion(std::move(handler), make_error_code(errc::closed), std::size_t{0});
    }
    if (retrying_) {
      return post_completion(std::move(handler), make_error_code(errc::busy), std::size_t{0});
    }
    retrying_ = true;
    // Constructed in place: any_completion_handler's move assignment recurses in Boost 1.81.
    auto state = std::make_shared<retry_state>(retry_state{track(std::move(handler)), {}, 0, 0});
    asio::post(blocking_, [self = shared_from_this(), state]() mutable {
      std::error_code ec;
      state->files = read_failed_files(self->dir_, ec);
      auto& loop = self->executor_;
      asio::post(loop, [self = std::move(self), state, ec]() mutable {
        if (ec)
          return self->finish_retry(*state, ec);
        self->retry_next(std::move(state));
      });
    });
  }

  buffer_stats stats() const {
    buffer_stats st;
    st.pending_records = pending_records_;
    st.pending_bytes = pending_bytes_;
    st.segments = segments_.size();
    st.disk_bytes = disk_bytes_ + reserved_bytes_;
    st.oldest_pending_created_ms = oldest_pending_created_ms();
    st.failed_records = failed_records_;
    st.appended_total = appended_total_;
    st.acked_total = acked_total_;
    st.truncated_tails_total = truncated_tails_;
    st.quarantined_segments_total = quarantined_segments_;
    st.unreadable_ranges_total = unreadable_ranges_;
    st.fsyncs_total = writer_ ? writer_->fsyncs() : 0;
    return st;
  }

  void close() {
    if (closed_)
      return;
    closed_ = true;
    writer_->close();
    blocking_.join();
    ack_file_.close();
    if (lock_fd_ >= 0)
      ::close(lock_fd_);
    lock_fd_ = -1;
    spdlog::info("buffer: closed log dir={} pending_records={}", dir_.string(), pending_records_);
  }

 private:
  struct seg_state {
    std::uint64_t id = 0;
    std::uint64_t end = 0;
    std::uint64_t records = 0;
    std::uint64_t record_bytes = 0;
    std::uint64_t acked_records = 0;
    std::uint64_t acked_bytes = 0;
    std::optional<std::int64_t> first_created_ms;
    bool sealed = false;
    bool unreadable = false;  // replay skipped part of it: quarantine rather than delete
  };

  struct inflight_entry {
    record_position pos;
    std::uint64_t end = 0;
    std::uint32_t bytes = 0;
    std::int64_t created_ms = 0;
    bool skipped = false;  // an unreadable range, not a record
  };

  struct append_op {
    pending_handler<void(std::error_code)> op;
    std::uint64_t bytes = 0;
  };

  struct retry_state {
    pending_handler<void(std::error_code, std::size_t)> op;
    std::vector<failed_file> files;
    std::size_t next = 0;
    std::size_t retried = 0;
  };

  template <typename Signature>
  pending_handler<Signature> track(asio::any_completion_handler<Signature> handler) {
    auto ex = asio::get_associated_executor(handler, executor_);
    return {std::move(handler), asio::prefer(ex, asio::execution::outstanding_work.tracked)};
  }

  // Completes from the loop, on the handler's executor (inline when that is the loop).
  template <typename Signature, typename... Args>
  static void complete(pending_handler<Signature> op, Args... args) {
    auto work = std::move(op.work);
    asio::dispatch(work, [h = std::move(op.handler), ... args = std::move(args)]() mutable {
      std::move(h)(std::move(args)...);
    });
  }

  // Completes an operation that failed or finished at initiation: never inline.
  template <typename Signature, typename... Args>
  void post_completion(asio::any_completion_handler<Signature> handler, Args... args) {
    asio::post(executor_, asio::append(std::move(handler), std::move(args)...));
  }

  seg_state* find_segment(std::uint64_t id) {
    const auto it = std::lower_bound(segments_.begin(), segments_.end(), id,
                                     [](const seg_state& s, std::uint64_t v) { return s.id < v; });
    return it != segments_.end() && it->id == id ? &*it : nullptr;
  }

  std::uint64_t unread_records() const { return pending_records_ - inflight_records_; }

  std::optional<std::int64_t> oldest_pending_created_ms() const {
    if (pending_records_ == 0)
      return std::nullopt;
    for (const auto& e : inflight_) {
      if (!e.skipped)
        return e.created_ms;
    }
    if (unread_head_created_ms_)
      return unread_head_created_ms_;
    // Only after a race between a read and appends; the segment's first record is close.
    for (const auto& s : segments_) {
      if (s.records > s.acked_records)
        return s.first_created_ms;
    }
    return std::nullopt;
  }

  void on_writer_report(writer_report report) {
    for (const auto& s : report.sealed)
      on_sealed(s);
    std::vector<std::pair<pending_handler<void(std::error_code)>, std::error_code>> done;
    done.reserve(report.appends.size());
    for (const auto& res : report.appends) {
      append_op op = std::move(appends_.front());
      appends_.pop_front();
      reserved_bytes_ -= op.bytes;
      if (!res.ec)
        apply_append(res);
      done.emplace_back(std::move(op.op), res.ec);
    }
    collect_acked_segments();
    // Bookkeeping is complete before any handler runs, so handlers may call back into the log.
    for (auto& [op, ec] : done)
      complete(std::move(op), ec);
  }

  void on_sealed(const sealed_segment& sealed) {
    if (seg_state* s = find_segment(sealed.id)) {
      s->sealed = true;
      if (s->end != sealed.end) {
        spdlog::error("buffer: sealed segment size mismatch id={} known={} sealed={}", sealed.id,
                      s->end, sealed.end);
      }
      return;
    }
    // Created for a round whose write failed: it holds no record.
    if (sealed.end <= segment_header_size && !closed_) {
      remove_file(sealed.id, false);
    }
  }

  void apply_append(const append_result& res) {
    if (segments_.empty() || segments_.back().id < res.segment) {
      seg_state s;
      s.id = res.segment;
      s.end = segment_header_size;
      disk_bytes_ += segment_header_size;
      segments_.push_back(s);
    }
    seg_state* s = find_segment(res.segment);
    if (s == nullptr || s->end != res.begin) {
      spdlog::error("buffer: append out of order segment={} begin={}", res.segment, res.begin);
      if (s == nullptr)
        return;
    }
    if (unread_records() == 0)
      unread_head_created_ms_ = res.first_created_ms;
    s->end = res.end;
    s->records += res.records;
    s->record_bytes += res.end - res.begin;
    if (!s->first_created_ms)
      s->first_created_ms = res.first_created_ms;
    disk_bytes_ += res.end - res.begin;
    pending_records_ += res.records;
    pending_bytes_ += res.end - res.begin;
    appended_total_ += res.records;
  }

  void on_read(replay_chunk chunk,
               pending_handler<void(std::error_code, std::vector<buffered_record>)> op) {
    reading_ = false;
    auto skipped = chunk.skipped.begin();
    const auto add_skipped_before = [&](const record_position* limit) {
      while (skipped != chunk.skipped.end() &&
             (limit == nullptr || record_position{skipped->segment, skipped->begin} < *limit)) {
        inflight_.push_back({{skipped->segment, skipped->begin}, skipped->end, 0, 0, true});
        read_ = {skipped->segment, skipped->end};
        if (seg_state* s = find_segment(skipped->segment))
          s->unreadable = true;
        ++unreadable_ranges_;
        ++skipped;
      }
    };
    for (const auto& r : chunk.records) {
      add_skipped_before(&r.position);
      inflight_.push_back(
          {r.position, r.position.offset + r.size, r.size, r.msg.created_ms, false});
      ++inflight_records_;
      read_ = {r.position.segment, r.position.offset + r.size};
    }
    add_skipped_before(nullptr);
    unread_head_created_ms_ = chunk.next_created_ms;
    if (!chunk.skipped.empty())
      after_ack();
    complete(std::move(op), std::error_code{}, std::move(chunk.records));
  }

  void after_ack() {
    // Unreadable ranges at the front are acknowledged implicitly: nothing can replay them.
    while (!inflight_.empty() && inflight_.front().skipped) {
      ack_ = {inflight_.front().pos.segment, inflight_.front().end};
      inflight_.pop_front();
    }
    collect_acked_segments();
    persist_ack();
  }

  void collect_acked_segments() {
    while (!segments_.empty()) {
      seg_state& s = segments_.front();
      const bool acked = ack_.segment > s.id || (ack_.segment == s.id && ack_.offset >= s.end);
      if (!acked)
        return;
      if (!s.sealed) {
        if (drain_requested_ != std::pair{s.id, s.end} && !closed_) {
          drain_requested_ = {s.id, s.end};
          writer_->seal_if_drained(s.id, s.end);
        }
        return;
      }
      pending_records_ -= s.records - s.acked_records;
      pending_bytes_ -= s.record_bytes - s.acked_bytes;
      disk_bytes_ -= s.end;
      if (!closed_)
        remove_file(s.id, s.unreadable);
      segments_.pop_front();
    }
  }

  void remove_file(std::uint64_t id, bool quarantine) {
    asio::post(blocking_, [self = shared_from_this(), id, quarantine] {
      self->reader_.forget(id);
      const fs::path path = self->dir_ / layout::file_name(id, layout::segment_suffix);
      std::error_code ec;
      if (quarantine) {
        ec = layout::quarantine_file(self->dir_, path);
        spdlog::warn("buffer: quarantined segment with unreadable records file={}", path.string());
      } else {
        fs::remove(path, ec);
      }
      if (ec) {
        spdlog::error("buffer: cannot remove drained segment file={} error={}", path.string(),
                      ec.message());
      }
    });
  }

  void persist_ack() {
    if (closed_)
      return;
    {
      std::lock_guard lock(ack_mutex_);
      ack_to_store_ = ack_;
      if (ack_store_queued_)
        return;
      ack_store_queued_ = true;
    }
    asio::post(blocking_, [self = shared_from_this()] {
      record_position pos;
      {
        std::lock_guard lock(self->ack_mutex_);
        pos = self->ack_to_store_;
        self->ack_store_queued_ = false;
      }
      if (auto ec = self->ack_file_.store(pos)) {
        spdlog::warn("buffer: cannot store ack cursor dir={} error={}", self->dir_.string(),
                     ec.message());
      }
    });
  }

  void retry_next(std::shared_ptr<retry_state> state) {
    while (state->next < state->files.size() && state->files[state->next].records.empty()) {
      finish_failed_file(state->files[state->next++]);
    }
    if (state->next == state->files.size())
      return finish_retry(*state, {});
    std::vector<message> messages;
    for (auto& f : state->files[state->next].records)
      messages.push_back(std::move(f.msg));
    const std::size_t n = messages.size();
    start_append(std::move(messages),
                 [self = shared_from_this(), state, n](std::error_code ec) mutable {
                   if (ec)
                     return self->finish_retry(*state, ec);
                   self->failed_records_ -= std::min<std::uint64_t>(self->failed_records_, n);
                   state->retried += n;
                   self->finish_failed_file(state->files[state->next++]);
                   self->retry_next(std::move(state));
                 });
  }

  void finish_failed_file(const failed_file& f) {
    if (closed_)
      return;
    asio::post(blocking_, [self = shared_from_this(), path = f.path, error = f.error] {
      std::error_code ec;
      if (error) {
        // The readable records went back to the log; keep the rest for an operator.
        ec = layout::quarantine_file(self->dir_, path);
      } else {
        fs::remove(path, ec);
      }
      if (ec) {
        spdlog::error("buffer: cannot remove retried failed file={} error={}", path.string(),
                      ec.message());
      }
    });
  }

  void finish_retry(retry_state& state, std::error_code ec) {
    retrying_ = false;
    if (ec) {
      spdlog::warn("buffer: retry of failed records stopped dir={} retried={} error={}",
                   dir_.string(), state.retried, ec.message());
    } else if (state.retried > 0) {
      spdlog::info("buffer: retried failed records dir={} count={}", dir_.string(), state.retried);
    }
    complete(std::move(state.op), ec, state.retried);
  }

  const fs::path dir_;
  const buffer_options options_;
  const asio::any_io_executor executor_;
  int lock_fd_;

  // Blocking thread only (after start()).
  asio::thread_pool blocking_{1};
  replay_reader reader_;
  ack_cursor_file ack_file_;

  std::mutex ack_mutex_;
  record_position ack_to_store_;
  bool ack_store_queued_ = false;

  std::unique_ptr<log_writer> writer_;

  // Loop only.
  std::deque<seg_state> segments_;
  std::deque<append_op> appends_;  // submitted to the writer, oldest first
  std::deque<inflight_entry> inflight_;
  record_position ack_;
  record_position read_;
  std::optional<std::int64_t> unread_head_created_ms_;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> drain_requested_;
  std::uint64_t pending_records_ = 0;
  std::uint64_t pending_bytes_ = 0;
  std::uint64_t inflight_records_ = 0;
  std::uint64_t disk_bytes_ = 0;
  std::uint64_t reserved_bytes_ = 0;
  std::uint64_t appended_total_ = 0;
  std::uint64_t acked_total_ = 0;
  std::uint64_t truncated_tails_ = 0;
  std::uint64_t quarantined_segments_ = 0;
  std::uint64_t unreadable_ranges_ = 0;
  std::uint64_t failed_records_ = 0;
  std::uint64_t next_failed_id_ = 1;
  bool reading_ = false;
  bool retrying_ = false;
  bool closed_ = false;
};

}  // namespace detail

std::unique_ptr<buffer_log> buffer_log::open(const fs::path& dir, const buffer_options& options,
                                             executor_type executor, std::error_code& ec) {
  ec.clear();
  fs::create_directories(dir, ec);
  if (ec)
    return nullptr;
  const int lock_fd = ::open((dir / layout::lock_file).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) {
    ec = {errno, std::system_category()};
    return nullptr;
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ec = errno == EWOULDBLOCK ? make_error_code(errc::log_locked)
                              : std::error_code{errno, std::system_category()};
    ::close(lock_fd);
    return nullptr;
  }
  const recovery_report report = recover_log(dir, ec);
  if (ec) {
    ::close(lock_fd);
    return nullptr;
  }
  auto core = std::make_shared<detail::log_core>(dir, options, std::move(executor), lock_fd);
  core->start(report);
  const buffer_stats st = core->stats();
  spdlog::info(
      "buffer: opened log dir={} fsync={} segments={} pending_records={} truncated_tails={} "
      "quarantined_segments={} failed_records={}",
      dir.string(), to_string(options.fsync), st.segments, st.pending_records,
      st.truncated_tails_total, st.quarantined_segments_total, st.failed_records);
  return std::unique_ptr<buffer_log>(new buffer_log(std::move(core)));
}

buffer_log::~buffer_log() {
  if (core_)
    core_->close();
}

void buffer_log::start_append(std::vector<message> messages, append_handler handler) {
  core_->start_append(std::move(messages), std::move(handler));
}

void buffer_log::start_read(std::size_t max_records, read_handler handler) {
  core_->start_read(max_records, std::move(handler));
}

void buffer_log::start_quarantine(std::vector<message> records, std::string reason,
                                  append_handler handler) {
  core_->start_quarantine(std::move(records), std::move(reason), std::move(handler));
}

void buffer_log::start_retry(retry_handler handler) {
  core_->start_retry(std::move(handler));
}

std::error_code buffer_log::acknowledge(const record_position& last) {
  return core_->acknowledge(last);
}

std::error_code buffer_log::rewind() {
  return core_->rewind();
}

buffer_stats buffer_log::stats() const {
  return core_->stats();
}

const fs::path& buffer_log::dir() const {
  return core_->dir();
}

buffer_log::executor_type buffer_log::get_executor() const {
  return core_->executor();
}

void buffer_log::close() {
  core_->close();
}

}  // namespace sluice::buffer
