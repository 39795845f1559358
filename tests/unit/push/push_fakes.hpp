#pragma once

// Fakes of what the push path stands on (PostgreSQL, a buffer log), for driving every failure
// and interleaving of push_service, push_batcher and buffer_replayer without a server. The
// integration tests (tests/integration/push) run the same paths against real PostgreSQL.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "sluice/core/async_event.hpp"
#include "sluice/core/message.hpp"
#include "sluice/push/record_log.hpp"
#include "sluice/store/message_store.hpp"

#include <boost/asio/io_context.hpp>

namespace sluice::push::test {

inline std::string key_of(const message& m) {
  return m.queue + '\n' + m.transaction_id.value_or("");
}

// Stores rows in memory with PostgreSQL's idempotency (by id, and by queue + transactionId).
// `hold` parks inserts until released; `script` decides an insert's fate when it is called.
class fake_store final : public store::message_writer {
 public:
  struct row {
    message msg;
  };
  // Returns a failure to answer with, or nothing to store normally; may throw.
  using script_fn = std::function<std::optional<store::insert_result>(const std::vector<message>&)>;

  boost::asio::awaitable<store::insert_result> insert_batch(const std::vector<message>& batch,
                                                            store::clock::time_point) override {
    ++calls;
    // Decided when the call is made, as PostgreSQL's answer is by the state it finds.
    std::optional<store::insert_result> failure;
    if (script)
      failure = script(batch);
    while (hold)
      co_await released.wait_until(async_event::clock::time_point::max());
    if (failure)
      co_return *failure;
    store::insert_result res;
    std::map<std::string, uuid> in_batch;
    for (const auto& m : batch) {
      const std::string id = m.id.to_string();
      if (const auto it = rows.find(id); it != rows.end()) {
        res.items.push_back({store::insert_status::duplicate, m.id});
        continue;
      }
      if (m.transaction_id) {
        if (const auto it = by_key.find(key_of(m)); it != by_key.end()) {
          res.items.push_back({store::insert_status::duplicate, it->second});
          continue;
        }
      }
      rows.emplace(id, row{m});
      if (m.transaction_id)
        by_key.emplace(key_of(m), m.id);
      res.items.push_back({store::insert_status::stored, m.id});
    }
    co_return res;
  }

  void release() {
    hold = false;
    released.notify_all();
  }
  bool has(const uuid& id) const { return rows.contains(id.to_string()); }

  // A statement that ran out of time (statement_timeout: SQLSTATE 57014).
  static store::insert_result timed_out(
      std::string why = "canceling statement due to statement timeout") {
    store::insert_result r;
    r.ec = store::make_error_code(store::errc::query_failed);
    r.sqlstate = "57014";
    r.message = std::move(why);
    return r;
  }
  // The connection is gone.
  static store::insert_result unavailable(std::string why = "could not connect") {
    store::insert_result r;
    r.ec = store::make_error_code(store::errc::connection_failed);
    r.message = std::move(why);
    return r;
  }

  std::map<std::string, row> rows;  // by id
  std::map<std::string, uuid> by_key;
  script_fn script;
  bool hold = false;
  async_event released;
  int calls = 0;
};

// A log in memory: positions are {0, index}. Appends can be held open and then completed or
// failed, reads can fail, and records can be made to vanish as a corrupt range would.
class fake_log final : public record_log {
 public:
  boost::asio::awaitable<std::error_code> append(std::vector<message> messages) override {
    ++appends_started;
    while (hold_appends)
      co_await released.wait_until(async_event::clock::time_point::max());
    if (fail_appends)
      co_return fail_appends;
    for (auto& m : messages) {
      buffer::buffered_record r;
      r.position = {0, records.size()};
      r.msg = std::move(m);
      records.push_back(std::move(r));
    }
    co_return std::error_code{};
  }

  boost::asio::awaitable<read_result> read_batch(std::size_t max_records) override {
    if (fail_reads) {
      ++reads_failed;
      co_return read_result{fail_reads, {}};
    }
    std::vector<buffer::buffered_record> out;
    while (read_pos < records.size() && out.size() < max_records) {
      if (!skipped.contains(read_pos))
        out.push_back(records[read_pos]);
      ++read_pos;
    }
    co_return read_result{std::error_code{}, std::move(out)};
  }

  std::error_code acknowledge(const buffer::record_position& last) override {
    acked = std::max<std::size_t>(acked, last.offset + 1);
    return {};
  }
  std::error_code rewind() override {
    read_pos = acked;
    return {};
  }
  boost::asio::awaitable<std::error_code> quarantine_failed(std::vector<message> r,
                                                            std::string reason) override {
    for (auto& m : r)
      failed.emplace_back(std::move(m), reason);
    co_return std::error_code{};
  }
  boost::asio::awaitable<std::pair<std::error_code, buffer::retry_result>> retry_failed(
      buffer::retry_filter filter) override {
    std::vector<message> again;
    std::vector<std::pair<message, std::string>> left;
    for (auto& [m, why] : failed) {
      const bool matches =
          (!filter.queue || m.queue == *filter.queue) &&
          (!filter.reason_substring || why.find(*filter.reason_substring) != std::string::npos);
      if (matches && again.size() < filter.max_records)
        again.push_back(m);
      else
        left.emplace_back(m, why);
    }
    const std::size_t n = again.size();
    const auto ec = co_await append(std::move(again));
    if (ec)
      co_return std::pair{ec, buffer::retry_result{0, failed.size()}};
    failed = std::move(left);
    co_return std::pair{std::error_code{}, buffer::retry_result{n, failed.size()}};
  }
  buffer::buffer_stats stats() const override {
    buffer::buffer_stats s;
    std::size_t pending = 0;
    for (std::size_t i = acked; i < records.size(); ++i)
      pending += skipped.contains(i) ? 0 : 1;
    s.pending_records = pending;
    s.failed_records = failed.size();
    s.unreadable_ranges_total = unreadable_ranges;
    return s;
  }
  std::string name() const override { return "fake"; }

  void release() {
    hold_appends = false;
    released.notify_all();
  }
  bool holds(const uuid& id) const {
    for (const auto& r : records) {
      if (r.msg.id == id)
        return true;
    }
    return false;
  }

  std::vector<buffer::buffered_record> records;
  std::size_t acked = 0;
  std::size_t read_pos = 0;
  std::set<std::size_t> skipped;  // indexes a corrupt range took away
  std::uint64_t unreadable_ranges = 0;
  std::vector<std::pair<message, std::string>> failed;
  bool hold_appends = false;
  std::error_code fail_appends;
  std::error_code fail_reads;
  async_event released;
  int appends_started = 0;
  int reads_failed = 0;
};

// Runs every handler that is ready now, timers not yet due excepted: afterwards, whatever has
// not finished is waiting for an event.
inline void settle(boost::asio::io_context& io) {
  io.restart();
  while (io.poll() > 0) {
  }
}

// Runs the loop until `done()` or the timeout; true when done.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until)
      return false;
    io.restart();
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

inline message make_message(std::string queue, std::optional<std::string> transaction_id,
                            std::string payload = "{}") {
  message m{};
  m.queue = std::move(queue);
  m.partition = "Default";
  m.transaction_id = std::move(transaction_id);
  m.payload = std::move(payload);
  return m;
}

}  // namespace sluice::push::test
