#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/core/async_event.hpp"
#include "sluice/rpc/rpc_message.hpp"
#include "sluice/worker/task_group.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::worker {

struct batch_limits {
  std::size_t max_requests = 10;
  std::chrono::milliseconds max_wait{50};
};

// Batch mode of one flavour's consumer: requests handed to submit() are collected into one open
// batch, which is sent when it holds max_requests requests or max_wait after its first request
// arrived, whichever comes first; each submit() then returns its own request's reply. A request
// whose correlation id is already in the open batch sends that batch first (ids must be unique
// within a batch to split the answer). Several batches may be in flight at once: the consumer's
// prefetch bounds the requests, so it also bounds the batches. Loop-thread only.
class batch_assembler {
 public:
  using clock = std::chrono::steady_clock;

  struct item {
    rpc::rpc_request request;
    std::string correlation_id;
    clock::time_point deadline;
  };
  // Sends one batch before `deadline` (the latest of its requests': each caller gives up on its
  // own, so one short deadline must not fail the others) and returns one reply per item, in
  // order. call_batch() in production, a fake in tests.
  using sender = std::function<boost::asio::awaitable<std::vector<rpc::rpc_reply>>(
      const std::vector<item>& items, clock::time_point deadline)>;

  batch_assembler(boost::asio::any_io_executor executor, batch_limits limits, sender send);
  ~batch_assembler();
  batch_assembler(const batch_assembler&) = delete;
  batch_assembler& operator=(const batch_assembler&) = delete;

  boost::asio::awaitable<rpc::rpc_reply> submit(item request);

  // Ends the timers and the batches in flight (their submit() calls end by cancellation too, as
  // their own owners cancel them) and waits for them; the open batch is dropped.
  boost::asio::awaitable<void> stop(clock::time_point deadline);

  std::size_t open_requests() const;
  std::size_t batches_in_flight() const { return in_flight_; }
  std::uint64_t batches_sent() const { return sent_; }

 private:
  struct slot {
    std::optional<rpc::rpc_reply> reply;
    async_event ready;
  };
  struct batch {
    explicit batch(boost::asio::any_io_executor executor) : timer(std::move(executor)) {}
    std::vector<item> items;
    std::vector<std::shared_ptr<slot>> slots;
    std::set<std::string, std::less<>> ids;
    boost::asio::steady_timer timer;
  };

  void flush();
  boost::asio::awaitable<void> time_out(std::shared_ptr<batch> b);
  boost::asio::awaitable<void> send(std::shared_ptr<batch> b);

  boost::asio::any_io_executor executor_;
  batch_limits limits_;
  sender send_;
  std::shared_ptr<batch> open_;
  task_group tasks_;
  std::size_t in_flight_ = 0;
  std::uint64_t sent_ = 0;
  bool stopped_ = false;
};

}  // namespace sluice::worker
