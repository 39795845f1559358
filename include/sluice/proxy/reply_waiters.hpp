#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sluice/core/async_event.hpp"
#include "sluice/http/client_watch.hpp"
#include "sluice/http/message.hpp"
#include "sluice/rpc/rpc_message.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::proxy {

// One request waiting for its reply. Made by reply_waiters::add(); the reply (or a failure the
// publish path found) is put into it by the table and wakes wait().
struct waiter {
  using clock = std::chrono::steady_clock;

  waiter(std::string id, std::size_t body_bytes, clock::time_point until)
      : correlation_id(std::move(id)), bytes(body_bytes), deadline(until) {}

  std::string correlation_id;
  std::size_t bytes;
  clock::time_point deadline;
  std::optional<rpc::rpc_reply> reply;
  std::optional<http::response> failure;  // e.g. the broker refused the publish
  async_event event;
  bool registered = true;  // false once removed from the table
};

// How a wait ended. The transitions, each from `waiting` and each at most once:
//   replied       a reply with the waiter's correlation id arrived before the deadline
//   failed        the publish path gave up on the request (nack, return, lost channel)
//   timed_out     the deadline came first (504 upstream_timeout)
//   disconnected  the client went away first (nobody to answer)
// A reply that finds no waiter (it came after one of the last three) is a late reply: dropped
// and counted.
enum class wait_outcome { replied, failed, timed_out, disconnected };
const char* to_string(wait_outcome outcome);

// Correlation id -> waiting request, bounded by the number of entries and by the request-body
// bytes they hold (PROXY_MAX_PENDING, PROXY_MAX_INFLIGHT_BYTES): a bound reached refuses the
// next request (503 proxy_overloaded) instead of holding more memory. Loop-thread only.
class reply_waiters {
 public:
  using clock = waiter::clock;
  struct limits {
    std::size_t max_pending = 10'000;
    std::uint64_t max_bytes = 256ULL << 20;
  };
  enum class refusal { none, too_many, too_many_bytes };

  explicit reply_waiters(limits bounds) : limits_(bounds) {}

  // Null when a bound is reached (`why` says which). A request larger than the byte bound
  // alone is still admitted when nothing else is in flight, so a body the HTTP limit allows
  // can always pass on a quiet instance.
  std::shared_ptr<waiter> add(std::string correlation_id, std::size_t body_bytes,
                              clock::time_point deadline, refusal* why = nullptr);
  // Hands the reply to its waiter; false (and counted as late) when none waits for it.
  bool deliver(std::string_view correlation_id, rpc::rpc_reply reply);
  // Ends the wait with `r` (publish failures); nothing when the waiter is gone.
  void fail(std::string_view correlation_id, http::response r);
  // Takes the waiter out of the table and frees its share of the bounds; idempotent.
  void remove(const std::shared_ptr<waiter>& w);

  // Until replied, failed, the deadline, or the client went away (`client` may be null).
  boost::asio::awaitable<wait_outcome> wait(const std::shared_ptr<waiter>& w,
                                            http::client_watch* client);

  std::size_t pending() const { return entries_.size(); }
  std::uint64_t pending_bytes() const { return bytes_; }
  std::uint64_t late_replies() const { return late_; }
  const limits& bounds() const { return limits_; }
  // Runs after every change of pending()/pending_bytes() and for every late reply: the hook
  // for gauges and counters.
  void on_change(std::function<void()> listener) { on_change_ = std::move(listener); }

 private:
  void changed() {
    if (on_change_)
      on_change_();
  }

  limits limits_;
  std::unordered_map<std::string, std::shared_ptr<waiter>> entries_;
  std::uint64_t bytes_ = 0;
  std::uint64_t late_ = 0;
  std::function<void()> on_change_;
};

}  // namespace sluice::proxy
