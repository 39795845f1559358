#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

#include "sluice/buffer/buffer_log.hpp"
#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

namespace sluice::buffer::test {

namespace asio = boost::asio;
namespace fs = std::filesystem;

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "sluice-buffer-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline message make_message(int n, std::string queue = "orders", std::size_t payload_size = 0) {
  static uuid_v7_generator gen;
  message m;
  m.created_ms = 1'700'000'000'000 + n;
  m.id = gen.next(m.created_ms);
  m.queue = std::move(queue);
  m.partition = "p" + std::to_string(n % 3);
  if (n % 2 == 0)
    m.namespace_ = "ns";
  if (n % 3 == 0)
    m.task = "task-" + std::to_string(n);
  if (n % 4 == 0)
    m.trace_id = "trace-" + std::to_string(n);
  if (n % 5 == 0)
    m.transaction_id = "tx-" + std::to_string(n);
  if (n % 6 == 0)
    m.event_us = -1'000'000 + n;  // before 1970: an event time is any instant
  m.payload =
      "{\"n\":" + std::to_string(n) + ",\"pad\":\"" + std::string(payload_size, 'x') + "\"}";
  return m;
}

inline std::vector<message> make_messages(int first, int count, std::size_t payload_size = 0) {
  std::vector<message> out;
  for (int i = first; i < first + count; ++i)
    out.push_back(make_message(i, "orders", payload_size));
  return out;
}

inline bool same_message(const message& a, const message& b) {
  return a.id == b.id && a.created_ms == b.created_ms && a.queue == b.queue &&
         a.partition == b.partition && a.namespace_ == b.namespace_ && a.task == b.task &&
         a.trace_id == b.trace_id && a.transaction_id == b.transaction_id &&
         a.payload == b.payload && a.event_us == b.event_us;
}

// Runs `aw` to completion on `ioc` (10 s deadline) and returns its result.
template <typename T>
T run(asio::io_context& ioc, asio::awaitable<T> aw) {
  auto fut = asio::co_spawn(ioc, std::move(aw), asio::use_future);
  ioc.restart();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < deadline) {
    ioc.run_for(std::chrono::milliseconds(20));
    ioc.restart();
  }
  if (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    ADD_FAILURE() << "coroutine did not finish within 10 s";
    ioc.stop();
    throw std::runtime_error("timeout");
  }
  return fut.get();
}

// Polls `done` on the loop every 2 ms until it holds or 5 s pass.
inline asio::awaitable<bool> eventually(std::function<bool()> done) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      co_return false;
    timer.expires_after(std::chrono::milliseconds(2));
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return true;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<fs::path> files_with_suffix(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::exists(dir, ec))
    return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().ends_with(suffix))
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A log in a fresh directory driven on one io_context.
class log_test_base : public ::testing::Test {
 public:  // lambdas inside tests call these too
  std::unique_ptr<buffer_log> open_log(buffer_options options = fast_options()) {
    std::error_code ec;
    auto log = buffer_log::open(tmp_.path(), options, ioc_.get_executor(), ec);
    EXPECT_FALSE(ec) << ec.message();
    return log;
  }

  static buffer_options fast_options() {
    buffer_options o;
    o.fsync = fsync_policy::never;
    return o;
  }

  template <typename T>
  T run(asio::awaitable<T> aw) {
    return test::run(ioc_, std::move(aw));
  }

  // Reads every pending record in batches of `batch`, acknowledging none.
  std::vector<buffered_record> read_all(buffer_log& log, std::size_t batch) {
    return run([&]() -> asio::awaitable<std::vector<buffered_record>> {
      std::vector<buffered_record> all;
      for (;;) {
        auto [ec, records] = co_await log.read_batch(batch, asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(ec) << ec.message();
        if (records.empty())
          break;
        for (auto& r : records)
          all.push_back(std::move(r));
      }
      co_return all;
    }());
  }

  std::error_code append(buffer_log& log, std::vector<message> messages) {
    return run([&]() -> asio::awaitable<std::error_code> {
      auto [ec] = co_await log.append(std::move(messages), asio::as_tuple(asio::use_awaitable));
      co_return ec;
    }());
  }

  std::tuple<std::error_code, std::vector<buffered_record>> read_once(buffer_log& log,
                                                                      std::size_t max_records) {
    return run([&]() -> asio::awaitable<std::tuple<std::error_code, std::vector<buffered_record>>> {
      co_return co_await log.read_batch(max_records, asio::as_tuple(asio::use_awaitable));
    }());
  }

  std::error_code quarantine(buffer_log& log, std::vector<message> records, std::string reason) {
    return run([&]() -> asio::awaitable<std::error_code> {
      auto [ec] = co_await log.quarantine_failed(std::move(records), std::move(reason),
                                                 asio::as_tuple(asio::use_awaitable));
      co_return ec;
    }());
  }

  bool eventually(std::function<bool()> done) { return run(test::eventually(std::move(done))); }

  temp_dir tmp_;
  asio::io_context ioc_;
};

}  // namespace sluice::buffer::test
