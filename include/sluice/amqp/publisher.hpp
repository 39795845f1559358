#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "sluice/amqp/error.hpp"
#include "sluice/amqp/message_properties.hpp"
#include "sluice/core/async_event.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::amqp {

class channel;
struct returned_message;

// Not an aggregate on purpose (the constructor): g++ 12 corrupts brace-initialized aggregate
// temporaries inside a co_await expression, e.g. co_await pub->publish(outgoing_message{...}).
struct outgoing_message {
  outgoing_message() = default;

  std::string exchange;
  std::string routing_key;
  message_properties properties;
  std::string body;
  // Ask the broker to return the message (basic.return) when no queue takes it.
  bool mandatory = false;
};

enum class publish_outcome {
  acked,   // the broker took responsibility (persisted, for persistent messages to durable queues)
  nacked,  // the broker refused it (basic.nack: queue limit with reject-publish, internal error)
  returned,  // mandatory and unroutable: basic.return, then ack
  failed,    // never confirmed: channel error, shutdown, or publish_and_wait's deadline
};

const char* to_string(publish_outcome outcome);

struct publish_result {
  publish_outcome outcome = publish_outcome::failed;
  std::error_code error;   // returned: the reply code (312 NO_ROUTE); failed: why
  std::string reply_text;  // the broker's words for returned / channel errors
  std::chrono::steady_clock::duration latency{};  // accepted into the window -> outcome
  std::uint32_t attempts = 0;                     // > 1 when re-sent after a reconnect
};

// Runs exactly once per accepted message, on the loop thread, inline with the frame that
// settled it: must not block.
using publish_callback = std::function<void(publish_result)>;

struct publisher_options {
  // Unconfirmed messages allowed at once (RABBITMQ_CONFIRM_WINDOW). A full window makes
  // publish() wait, which is how a slow broker pushes back on the caller.
  std::size_t confirm_window = 1000;
  // And the bytes they may hold (body, names and string properties): a publish is admitted
  // while fewer are unconfirmed, so the window holds at most this plus one message. Bounds
  // the memory of a window of large messages, which the count alone does not.
  std::size_t confirm_window_bytes = 64ULL << 20;
  // How long publish() may wait for a slot (window full, connection blocked or reconnecting).
  std::chrono::milliseconds publish_timeout{30000};
  // publish_and_wait()'s bound on the broker's answer after the slot was granted.
  std::chrono::milliseconds confirm_timeout{60000};
  // Sees every outcome before the message's own callback: the hook for metrics (counters,
  // confirm latency histogram) without tying this module to a metrics library.
  std::function<void(const publish_result&)> observer;
};

// Counters since creation; plain numbers the application can export however it likes.
struct publisher_stats {
  std::uint64_t published = 0;  // accepted into the window
  std::uint64_t sent = 0;       // basic.publish frames written, re-sends included
  std::uint64_t resent = 0;     // re-sent after a connection loss
  std::uint64_t acked = 0;
  std::uint64_t nacked = 0;
  std::uint64_t returned = 0;
  std::uint64_t failed = 0;
  std::uint64_t slot_timeouts = 0;  // publish() calls that gave up waiting for a slot
  std::uint64_t unencodable = 0;    // publish() calls refused: a name or property too long
  // basic.ack/basic.nack frames received; fewer than settled messages when the broker
  // confirms many at once (multiple=true).
  std::uint64_t confirm_frames = 0;
};

// Publisher confirms with a bounded window, on a channel in confirm mode that its owner
// attaches. Messages stay here until the broker settles them; when the connection is lost,
// the owner attaches a channel of the next connection and every unconfirmed message is sent
// again, in the original order, before any new one: at-least-once, so consumers may see
// duplicates (count them by message_id). A channel error (e.g. 404 for a missing exchange)
// instead fails the unconfirmed messages: re-sending what the broker refused would only kill
// the next channel too.
class publisher : public std::enable_shared_from_this<publisher> {
 public:
  using clock = std::chrono::steady_clock;

  static std::shared_ptr<publisher> create(publisher_options options = {});
  ~publisher();
  publisher(const publisher&) = delete;
  publisher& operator=(const publisher&) = delete;

  // Waits (at most publish_timeout) until a channel is attached, the connection is not
  // blocked and the window has room, then queues the message. On success on_result will run
  // once with the outcome; on error (errc::timeout, errc::shutting_down, or at once
  // errc::invalid_argument for a message AMQP cannot carry) it never runs.
  // Pass a named callback, never a capturing lambda written inside the co_await expression:
  // g++ 12 destroys such lambda temporaries twice.
  // `until` bounds the wait for a slot further (a caller with a deadline of its own).
  boost::asio::awaitable<std::error_code> publish(
      outgoing_message message, publish_callback on_result,
      clock::time_point until = clock::time_point::max());
  // publish() and then wait for the outcome (at most confirm_timeout).
  boost::asio::awaitable<publish_result> publish_and_wait(outgoing_message message);
  // True once nothing is unconfirmed; false if the deadline passed first.
  boost::asio::awaitable<bool> wait_idle(clock::time_point deadline);

  // Runs when the publisher may have become ready() (a channel attached, the connection
  // unblocked): for a caller that waits on its own event rather than inside publish(). One
  // listener; runs on the loop thread and must not block.
  void on_ready(std::function<void()> listener) { on_ready_ = std::move(listener); }

  // Owner wiring. `ch` must already be in confirm mode (channel::confirm_select()).
  void attach(std::shared_ptr<channel> ch);
  void set_blocked(bool blocked);
  // Fails everything unconfirmed and every waiting publish() with errc::shutting_down.
  void close();

  bool ready() const;
  // No publish is admitted now: confirm_window messages or confirm_window_bytes unconfirmed.
  bool window_full() const {
    return unconfirmed_.size() >= options_.confirm_window ||
           unconfirmed_bytes_ >= options_.confirm_window_bytes;
  }
  bool attached() const { return channel_ != nullptr; }
  std::size_t in_flight() const { return unconfirmed_.size(); }
  std::size_t in_flight_bytes() const { return unconfirmed_bytes_; }
  // What one message counts against confirm_window_bytes.
  static std::size_t window_bytes(const outgoing_message& message);
  const publisher_stats& stats() const { return stats_; }
  const publisher_options& options() const { return options_; }

 private:
  struct entry {
    outgoing_message message;
    publish_callback on_result;
    clock::time_point accepted;
    std::size_t bytes = 0;
    std::uint32_t attempts = 0;
    bool returned = false;
    std::uint16_t return_code = 0;
    std::string return_text;
  };

  explicit publisher(publisher_options options);

  void send(std::uint64_t seq, entry& e);
  void on_confirm(std::uint64_t delivery_tag, bool multiple, bool ack);
  void on_return(returned_message message);
  void on_channel_closed(const channel* ch, const close_reason& why);
  void settle(std::uint64_t seq, publish_outcome outcome, std::error_code error,
              std::string reply_text);
  void fail_all(std::error_code error, const std::string& text);

  publisher_options options_;
  publisher_stats stats_;
  std::shared_ptr<channel> channel_;
  bool blocked_ = false;
  bool closed_ = false;
  std::uint64_t next_seq_ = 1;
  // Publish order -> message; the key never changes, so re-sends keep the original order.
  std::map<std::uint64_t, entry> unconfirmed_;
  std::size_t unconfirmed_bytes_ = 0;
  // Delivery tag on the attached channel -> publish order key.
  std::map<std::uint64_t, std::uint64_t> by_tag_;
  std::vector<std::uint64_t> settling_;
  async_event event_;
  std::function<void()> on_ready_;
};

}  // namespace sluice::amqp
