#include "sluice/buffer/buffer_log.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "sluice/buffer/ack_store.hpp"
#include "sluice/buffer/blocking_worker.hpp"
#include "sluice/buffer/errc.hpp"
#include "sluice/buffer/failed_retry.hpp"
#include "sluice/buffer/failed_store.hpp"
#include "sluice/buffer/log_layout.hpp"
#include "sluice/buffer/log_recovery.hpp"
#include "sluice/buffer/log_writer.hpp"
#include "sluice/buffer/read_cursor.hpp"
#include "sluice/buffer/record_format.hpp"
#include "sluice/buffer/replay_reader.hpp"
#include "sluice/buffer/segment_set.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
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

// The engine behind buffer_log. It runs on the loop and owns the three threads' work: appends
// go to the writer thread (log_writer, started in start(), joined in close()); reads, deletions,
// ack cursor stores and failed/ files go to blocking_ (started with the core, joined in close()).
// Their results come back to the loop, where segments_ and cursor_ are the only bookkeeping.
// Posted work holds a shared_ptr to the core, so it outlives everything in flight.
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
    for (const auto& r : report.segments)
      segments_.add_recovered(r);
    cursor_.reset(report.ack, report.head_created_ms);
    truncated_tails_ = report.truncated_tails;
    quarantined_segments_ = report.quarantined_segments;
    unreadable_ranges_ = report.unreadable_ranges;
    unreadable_records_ = report.unreadable_records;
    quarantined_bytes_ = report.quarantined_bytes;
    failed_records_ = report.failed_records;
    failed_bytes_ = report.failed_bytes;
    next_failed_id_ = report.next_failed_id;
    if (auto ec = ack_store_.open(dir_)) {
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
        segments_.disk_bytes() + reserved_bytes_ + bytes > options_.max_total_bytes) {
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
    std::vector<read_extent> extents = segments_.extents_after(cursor_.read());
    if (extents.empty() || max_records == 0) {
      return post_completion(std::move(handler), std::error_code{}, std::vector<buffered_record>{});
    }
    reading_ = true;
    issue_read(std::move(extents), max_records, track(std::move(handler)));
  }

  std::error_code acknowledge(const record_position& last) {
    if (closed_)
      return errc::closed;
    if (last < cursor_.ack())
      return {};
    const bool known = cursor_.acknowledge(last, [this](const inflight_record& e) {
      segments_.acknowledge(e.pos.segment, e.bytes);
      ++acked_total_;
    });
    if (!known)
      return errc::unknown_position;
    after_ack();
    return {};
  }

  std::error_code rewind() {
    if (closed_)
      return errc::closed;
    if (reading_)
      return errc::busy;
    cursor_.rewind();
    return {};
  }

  void start_quarantine(std::vector<message> records, std::string reason,
                        asio::any_completion_handler<void(std::error_code)> handler) {
    if (closed_)
      return post_completion(std::move(handler), make_error_code(errc::closed));
    if (records.empty())
      return post_completion(std::move(handler), std::error_code{});
    const std::uint64_t bytes = failed_file_size(records, reason);
    if (options_.max_failed_bytes != 0 && failed_bytes_ + bytes > options_.max_failed_bytes) {
      ++failed_full_;
      spdlog::error(
          "buffer: failed/ is full, the records stay pending in the log dir={} count={} "
          "failed_bytes={} max_failed_bytes={}",
          dir_.string(), records.size(), failed_bytes_, options_.max_failed_bytes);
      return post_completion(std::move(handler), make_error_code(errc::failed_full));
    }
    failed_bytes_ += bytes;
    const std::uint64_t id = next_failed_id_++;
    blocking_.post([self = shared_from_this(), id, bytes, records = std::move(records),
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
      asio::post(loop, [self = std::move(self), n = records.size(), bytes, ec,
                        op = std::move(op)]() mutable {
        if (ec)
          self->failed_bytes_ -= bytes;
        else
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
    // Constructed in place: any_completion_handler's move assignment recurses in Boost 1.81.
    auto state = std::make_shared<retry_all_state>(retry_all_state{track(std::move(handler)), 0});
    retry_all_next(std::move(state));
  }

  void start_filtered_retry(
      retry_filter filter,
      asio::any_completion_handler<void(std::error_code, std::size_t, std::size_t)> handler) {
    if (closed_) {
      return post_completion(std::move(handler), make_error_code(errc::closed), std::size_t{0},
                             std::size_t{0});
    }
    if (retrying_) {
      return post_completion(std::move(handler), make_error_code(errc::busy), std::size_t{0},
                             std::size_t{0});
    }
    retrying_ = true;
    auto state = std::make_shared<retry_state>(
        retry_state{track(std::move(handler)), std::move(filter), {}, 0});
    blocking_.post([self = shared_from_this(), state]() mutable {
      state->plan = plan_retry(self->dir_, state->filter);
      auto& loop = self->executor_;
      asio::post(loop, [self = std::move(self), state]() mutable { self->run_retry(state); });
    });
  }

  buffer_stats stats() const {
    buffer_stats st;
    st.pending_records = segments_.pending_records();
    st.pending_bytes = segments_.pending_bytes();
    st.segments = segments_.size();
    st.disk_bytes = segments_.disk_bytes() + reserved_bytes_;
    st.oldest_pending_created_ms = oldest_pending_created_ms();
    st.failed_records = failed_records_;
    st.appended_total = appended_total_;
    st.acked_total = acked_total_;
    st.truncated_tails_total = truncated_tails_;
    st.quarantined_segments_total = quarantined_segments_;
    st.unreadable_ranges_total = unreadable_ranges_;
    st.unreadable_records_total = unreadable_records_;
    st.quarantined_bytes_total = quarantined_bytes_;
    st.read_errors_total = read_errors_;
    st.failed_bytes = failed_bytes_;
    st.failed_full_total = failed_full_;
    st.fsyncs_total = writer_ ? writer_->fsyncs() : 0;
    return st;
  }

  void close() {
    if (closed_)
      return;
    closed_ = true;
    writer_->close();
    blocking_.join();
    ack_store_.close();
    if (lock_fd_ >= 0)
      ::close(lock_fd_);
    lock_fd_ = -1;
    spdlog::info("buffer: closed log dir={} pending_records={}", dir_.string(),
                 segments_.pending_records());
  }

 private:
  struct append_op {
    pending_handler<void(std::error_code)> op;
    std::uint64_t bytes = 0;
  };

  struct retry_state {
    pending_handler<void(std::error_code, std::size_t, std::size_t)> op;
    retry_filter filter;
    retry_plan plan;
    std::size_t retried = 0;
  };

  struct retry_all_state {
    pending_handler<void(std::error_code, std::size_t)> op;
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

  std::uint64_t unread_records() const {
    return segments_.pending_records() - cursor_.inflight_records();
  }

  std::optional<std::int64_t> oldest_pending_created_ms() const {
    if (segments_.pending_records() == 0)
      return std::nullopt;
    if (auto created_ms = cursor_.oldest_created_ms())
      return created_ms;
    // Only after a race between a read and appends; the segment's first record is close.
    return segments_.first_unacked_created_ms();
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
    if (segment_state* s = segments_.find(sealed.id)) {
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
    const bool none_unread = unread_records() == 0;
    if (!segments_.apply_append(res))
      return;
    if (none_unread)
      cursor_.set_unread_head_created_ms(res.first_created_ms);
    appended_total_ += res.records;
  }

  void issue_read(std::vector<read_extent> extents, std::size_t max_records,
                  pending_handler<void(std::error_code, std::vector<buffered_record>)> op) {
    blocking_.post([self = shared_from_this(), extents = std::move(extents), max_records,
                    op = std::move(op)]() mutable {
      replay_chunk chunk = self->reader_.read(extents, max_records);
      auto& loop = self->executor_;
      asio::post(loop,
                 [self = std::move(self), chunk = std::move(chunk), op = std::move(op)]() mutable {
                   self->on_read(std::move(chunk), std::move(op));
                 });
    });
  }

  void on_read(replay_chunk chunk,
               pending_handler<void(std::error_code, std::vector<buffered_record>)> op) {
    reading_ = false;
    for (const auto& range : chunk.skipped)
      add_hole(range);
    for (const auto& r : chunk.records)
      cursor_.handed_out(r);
    if (!chunk.error)
      cursor_.set_unread_head_created_ms(chunk.next_created_ms);
    if (!chunk.skipped.empty())
      after_ack();
    // The reader goes on past corrupt ranges to the end of the extents, so an empty chunk
    // without an error really means nothing readable is pending.
    if (chunk.records.empty() && chunk.error) {
      ++read_errors_;
      return complete(std::move(op), chunk.error, std::vector<buffered_record>{});
    }
    complete(std::move(op), std::error_code{}, std::move(chunk.records));
  }

  void add_hole(const unreadable_range& range) {
    ++unreadable_ranges_;
    unreadable_records_ += range.records;
    quarantined_bytes_ += range.quarantined_bytes;
    segments_.add_hole(range);
  }

  void after_ack() {
    collect_acked_segments();
    persist_ack();
  }

  void collect_acked_segments() {
    while (const segment_state* s = segments_.drained_front(cursor_.ack())) {
      if (!s->sealed) {
        if (drain_requested_ != std::pair{s->id, s->end} && !closed_) {
          drain_requested_ = {s->id, s->end};
          writer_->seal_if_drained(s->id, s->end);
        }
        return;
      }
      const segment_state gone = segments_.pop_front();
      cursor_.ack_at_least({gone.id, gone.end});
      if (!closed_)
        remove_file(gone.id, gone.unreadable);
    }
  }

  void remove_file(std::uint64_t id, bool quarantine) {
    blocking_.post([self = shared_from_this(), id, quarantine] {
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
    if (closed_ || !ack_store_.offer(cursor_.ack()))
      return;
    blocking_.post([self = shared_from_this()] {
      if (auto ec = self->ack_store_.store_newest()) {
        spdlog::warn("buffer: cannot store ack cursor dir={} error={}", self->dir_.string(),
                     ec.message());
      }
    });
  }

  void run_retry(std::shared_ptr<retry_state> state) {
    retry_plan& plan = state->plan;
    const bool filtered = state->filter.queue || state->filter.reason_substring;
    if (!filtered && plan.messages.empty())
      plan.remaining = static_cast<std::size_t>(failed_records_);
    if (plan.ec || closed_)
      return finish_retry(*state, closed_ ? make_error_code(errc::closed) : plan.ec);
    if (plan.messages.empty())
      return apply_then_finish(std::move(state));
    const std::size_t n = plan.messages.size();
    std::vector<message> messages = std::move(plan.messages);
    start_append(std::move(messages), [self = shared_from_this(), state, n,
                                       filtered](std::error_code ec) mutable {
      if (ec) {
        state->plan.remaining =
            filtered ? state->plan.remaining + n : static_cast<std::size_t>(self->failed_records_);
        return self->finish_retry(*state, ec);
      }
      self->failed_records_ -= std::min<std::uint64_t>(self->failed_records_, n);
      state->retried = n;
      if (!filtered)
        state->plan.remaining = static_cast<std::size_t>(self->failed_records_);
      self->apply_then_finish(std::move(state));
    });
  }

  // After the append (or with nothing to append): failed/ without what was taken.
  void apply_then_finish(std::shared_ptr<retry_state> state) {
    if (closed_ || state->plan.changes.empty())
      return finish_retry(*state, {});
    blocking_.post([self = shared_from_this(), state]() mutable {
      const std::uint64_t freed = apply_retry(self->dir_, state->plan);
      auto& loop = self->executor_;
      asio::post(loop, [self = std::move(self), state, freed]() mutable {
        self->failed_bytes_ -= std::min(self->failed_bytes_, freed);
        for (const auto& c : state->plan.changes) {
          self->failed_records_ -= std::min(self->failed_records_, c.unreadable);
        }
        if (!state->filter.queue && !state->filter.reason_substring)
          state->plan.remaining = static_cast<std::size_t>(self->failed_records_);
        self->finish_retry(*state, {});
      });
    });
  }

  void finish_retry(retry_state& state, std::error_code ec) {
    retrying_ = false;
    if (ec) {
      spdlog::warn("buffer: retry of failed records stopped dir={} retried={} error={}",
                   dir_.string(), state.retried, ec.message());
    } else if (state.retried > 0) {
      spdlog::info("buffer: retried failed records dir={} count={} remaining={}", dir_.string(),
                   state.retried, state.plan.remaining);
    }
    complete(std::move(state.op), ec, state.retried, state.plan.remaining);
  }

  void retry_all_next(std::shared_ptr<retry_all_state> state) {
    retry_filter all;
    all.max_records = std::max<std::size_t>(options_.replay_batch, 1);
    start_filtered_retry(std::move(all),
                         [self = shared_from_this(), state](std::error_code ec, std::size_t retried,
                                                            std::size_t remaining) mutable {
                           state->retried += retried;
                           if (ec || retried == 0 || remaining == 0) {
                             auto op = std::move(state->op);
                             return complete(std::move(op), ec, state->retried);
                           }
                           self->retry_all_next(std::move(state));
                         });
  }

  const fs::path dir_;
  const buffer_options options_;
  const asio::any_io_executor executor_;
  int lock_fd_;

  // Started with the core, joined in close() after the writer, so close() returns with no file
  // I/O of the log in flight.
  blocking_worker blocking_;
  // Blocking thread only (after start()).
  replay_reader reader_;
  ack_store ack_store_;  // offered from the loop, stored on the blocking thread

  std::unique_ptr<log_writer> writer_;

  // Loop only.
  segment_set segments_;
  std::deque<append_op> appends_;  // submitted to the writer, oldest first
  read_cursor cursor_;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> drain_requested_;
  std::uint64_t reserved_bytes_ = 0;
  std::uint64_t appended_total_ = 0;
  std::uint64_t acked_total_ = 0;
  std::uint64_t truncated_tails_ = 0;
  std::uint64_t quarantined_segments_ = 0;
  std::uint64_t unreadable_ranges_ = 0;
  std::uint64_t unreadable_records_ = 0;
  std::uint64_t quarantined_bytes_ = 0;
  std::uint64_t read_errors_ = 0;
  std::uint64_t failed_records_ = 0;
  std::uint64_t failed_bytes_ = 0;
  std::uint64_t failed_full_ = 0;
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

void buffer_log::start_filtered_retry(retry_filter filter, filtered_retry_handler handler) {
  core_->start_filtered_retry(std::move(filter), std::move(handler));
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
