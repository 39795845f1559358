#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

#include "sluice/amqp/ack_window.hpp"
#include "sluice/amqp/delivery.hpp"
#include "sluice/amqp/error.hpp"
#include "sluice/amqp/field_table.hpp"
#include "sluice/amqp/message_properties.hpp"
#include "sluice/core/async_event.hpp"

#include <amqp.h>
#include <boost/asio/awaitable.hpp>

namespace sluice::amqp {

class connection;

// The option structs are not aggregates on purpose (the constructors): g++ 12 corrupts
// brace-initialized aggregate temporaries inside a co_await expression.
struct exchange_options {
  exchange_options() = default;

  bool durable = true;
  bool auto_delete = false;
  bool internal = false;
  bool passive = false;  // only check that it exists (404 otherwise)
  field_table arguments;
};

struct queue_options {
  queue_options() = default;

  bool durable = true;
  bool exclusive = false;
  bool auto_delete = false;
  bool passive = false;
  field_table arguments;  // e.g. {"x-queue-type", "quorum"}
};

struct queue_declare_ok {
  std::string queue;  // the broker-generated name when declared with ""
  std::uint32_t message_count = 0;
  std::uint32_t consumer_count = 0;
};

struct consume_options {
  consume_options() = default;

  std::string consumer_tag;  // empty: the channel makes a unique one
  bool no_ack = false;
  bool exclusive = false;
  field_table arguments;
};

// Called inline from the connection's reader for every delivery of the consumer: must not
// block (hand the work to a coroutine or a queue).
using delivery_handler = std::function<void(delivery)>;
// Called once when a consumer ends without basic_cancel from us: the broker cancelled it
// (queue deleted, quorum leader moved: errc::consumer_cancelled) or its channel closed.
using consumer_end_handler = std::function<void(const close_reason&)>;
// basic.ack / basic.nack from the broker in confirm mode.
using confirm_handler = std::function<void(std::uint64_t delivery_tag, bool multiple, bool ack)>;
using return_handler = std::function<void(returned_message)>;

// One AMQP channel. RPCs (declare, bind, qos, consume, ...) complete in the order they were
// sent, as the protocol guarantees per channel, each bounded by the connection's rpc_timeout.
// A channel error from the broker (404, 406, 403, ...) closes the channel: the failing call
// returns the reply code as an error_code (reply_code::precondition_failed, ...) and reason()
// keeps the broker's text. A closed channel stays closed; open a new one.
class channel : public std::enable_shared_from_this<channel> {
 public:
  using clock = std::chrono::steady_clock;
  enum class state { opening, open, closing, closed };

  // Made by connection::open_channel(), which also opens it.
  channel(std::weak_ptr<connection> owner, std::uint16_t id, std::chrono::milliseconds rpc_timeout);
  ~channel();
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  std::uint16_t id() const { return id_; }
  state current_state() const { return state_; }
  bool is_open() const { return state_ == state::open; }
  const close_reason& reason() const { return reason_; }
  // True when the channel ended because its connection did, not by a channel error.
  bool closed_with_connection() const { return closed_with_connection_; }
  // True while the connection is blocked by a broker resource alarm.
  bool is_connection_blocked() const;

  boost::asio::awaitable<std::error_code> close();

  boost::asio::awaitable<std::error_code> exchange_declare(std::string name, std::string type,
                                                           exchange_options options = {});
  boost::asio::awaitable<std::error_code> exchange_delete(std::string name, bool if_unused = false);
  boost::asio::awaitable<std::tuple<std::error_code, queue_declare_ok>> queue_declare(
      std::string name, queue_options options = {});
  boost::asio::awaitable<std::error_code> queue_bind(std::string queue, std::string exchange,
                                                     std::string routing_key,
                                                     field_table arguments = {});
  boost::asio::awaitable<std::error_code> queue_unbind(std::string queue, std::string exchange,
                                                       std::string routing_key,
                                                       field_table arguments = {});
  // Returns the number of messages the queue held.
  boost::asio::awaitable<std::tuple<std::error_code, std::uint32_t>> queue_delete(
      std::string name, bool if_unused = false, bool if_empty = false);
  boost::asio::awaitable<std::tuple<std::error_code, std::uint32_t>> queue_purge(std::string name);
  boost::asio::awaitable<std::error_code> basic_qos(std::uint16_t prefetch_count,
                                                    bool global = false);
  // The handler is registered before basic.consume leaves, so no delivery can slip past it.
  // Returns the consumer tag. Pass named handlers: g++ 12 destroys capturing lambda
  // temporaries inside a co_await expression twice.
  boost::asio::awaitable<std::tuple<std::error_code, std::string>> basic_consume(
      std::string queue, delivery_handler on_delivery, consume_options options = {},
      consumer_end_handler on_end = {});
  boost::asio::awaitable<std::error_code> basic_cancel(std::string consumer_tag);
  // Puts the channel in confirm mode: every later publish is acked or nacked by the broker.
  boost::asio::awaitable<std::error_code> confirm_select();

  // No reply exists for these: errors only say the channel is already closed. They leave at
  // once; delivery::ack() goes through ack_delivery() instead.
  std::error_code basic_ack(std::uint64_t delivery_tag, bool multiple = false);
  std::error_code basic_nack(std::uint64_t delivery_tag, bool multiple, bool requeue);
  std::error_code basic_reject(std::uint64_t delivery_tag, bool requeue);
  // Acks a delivery of an acknowledging consumer at the writer's next flush, coalesced with the
  // other acks of the channel (ack_window); close() sends what is recorded first.
  std::error_code ack_delivery(std::uint64_t delivery_tag);

  // Queues basic.publish and its content for the writer. In confirm mode the broker will
  // confirm it with delivery tag next_publish_seq() as read just before this call.
  std::error_code basic_publish(std::string_view exchange, std::string_view routing_key,
                                const message_properties& properties, std::string_view body,
                                bool mandatory = false);
  bool confirm_mode() const { return confirm_mode_; }
  std::uint64_t next_publish_seq() const { return next_publish_seq_; }

  void set_confirm_handler(confirm_handler handler) { on_confirm_ = std::move(handler); }
  void set_return_handler(return_handler handler) { on_return_ = std::move(handler); }
  // Listeners run once, when the channel closes for any reason (also when we close it).
  void on_closed(std::function<void(const close_reason&)> listener);

 private:
  friend class connection;

  struct rpc {
    amqp_method_number_t reply = 0;
    bool done = false;
    std::error_code error;
    queue_declare_ok declare_ok;
    std::uint32_t message_count = 0;
  };
  struct consumer_entry {
    delivery_handler on_delivery;
    consumer_end_handler on_end;
    bool no_ack = false;
  };
  enum class content_kind { none, deliver, ret };
  struct incoming {
    content_kind kind = content_kind::none;
    bool header_seen = false;
    std::uint64_t body_size = 0;
    delivery message;
    std::uint16_t reply_code = 0;
    std::string reply_text;
  };

  boost::asio::awaitable<std::error_code> open();
  boost::asio::awaitable<std::error_code> call(amqp_method_number_t method, void* args,
                                               amqp_method_number_t reply,
                                               std::shared_ptr<rpc>& out,
                                               amqp_table_t* table_slot = nullptr,
                                               const field_table* table = nullptr);
  std::error_code send(amqp_method_number_t method, void* args);
  // From the connection's writer, just before it writes: the recorded acks as frames.
  void flush_acks();

  // From the connection's reader. Returns a protocol error the connection must die of.
  std::error_code on_frame(const amqp_frame_t& frame);
  std::error_code on_method(const amqp_method_t& method);
  std::error_code complete_rpc(amqp_method_number_t id, const void* decoded);
  void finish_content();
  void on_connection_closed(const close_reason& why);
  // Closes the channel locally: fails pending calls, ends consumers, tells listeners.
  void shut(const close_reason& why);

  std::weak_ptr<connection> owner_;
  std::uint16_t id_;
  std::chrono::milliseconds rpc_timeout_;
  state state_ = state::opening;
  close_reason reason_;
  std::deque<std::shared_ptr<rpc>> rpcs_;
  async_event rpc_event_;
  std::map<std::string, std::shared_ptr<consumer_entry>, std::less<>> consumers_;
  std::uint64_t next_consumer_tag_ = 1;
  bool closed_with_connection_ = false;
  bool confirm_mode_ = false;
  std::uint64_t next_publish_seq_ = 0;
  ack_window acks_;
  bool ack_flush_requested_ = false;
  incoming incoming_;
  confirm_handler on_confirm_;
  return_handler on_return_;
  std::vector<std::function<void(const close_reason&)>> closed_listeners_;
};

}  // namespace sluice::amqp
