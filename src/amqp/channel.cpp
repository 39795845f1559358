#include "sluice/amqp/channel.hpp"

#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/frame_codec.hpp"

#include <amqp_framing.h>
#include <spdlog/spdlog.h>

namespace sluice::amqp {

namespace asio = boost::asio;

namespace {

std::error_code closed_error(const close_reason& reason) {
  return reason.error ? reason.error : make_error_code(errc::channel_closed);
}

}  // namespace

std::error_code delivery::ack() const {
  if (auto ch = source.lock()) {
    return ch->ack_delivery(delivery_tag);
  }
  return make_error_code(errc::channel_closed);
}

std::error_code delivery::nack(bool requeue) const {
  if (auto ch = source.lock()) {
    return ch->basic_nack(delivery_tag, false, requeue);
  }
  return make_error_code(errc::channel_closed);
}

std::error_code delivery::reject(bool requeue) const {
  if (auto ch = source.lock()) {
    return ch->basic_reject(delivery_tag, requeue);
  }
  return make_error_code(errc::channel_closed);
}

channel::channel(std::weak_ptr<connection> owner, std::uint16_t id,
                 std::chrono::milliseconds rpc_timeout)
    : owner_(std::move(owner)), id_(id), rpc_timeout_(rpc_timeout) {}

channel::~channel() = default;

bool channel::is_connection_blocked() const {
  const auto conn = owner_.lock();
  return conn && conn->is_blocked();
}

void channel::on_closed(std::function<void(const close_reason&)> listener) {
  closed_listeners_.push_back(std::move(listener));
}

std::error_code channel::send(amqp_method_number_t method, void* args) {
  const auto conn = owner_.lock();
  if (!conn || state_ == state::closed) {
    return closed_error(reason_);
  }
  return conn->send_method(id_, method, args);
}

asio::awaitable<std::error_code> channel::call(amqp_method_number_t method, void* args,
                                               amqp_method_number_t reply,
                                               std::shared_ptr<rpc>& out, amqp_table_t* table_slot,
                                               const field_table* table) {
  auto self = shared_from_this();
  if (state_ == state::closed || state_ == state::closing) {
    co_return closed_error(reason_);
  }
  auto r = std::make_shared<rpc>();
  r->reply = reply;
  {
    const auto conn = owner_.lock();
    if (!conn) {
      co_return make_error_code(errc::connection_closed);
    }
    const auto ec = table != nullptr ? conn->send_method(id_, method, args, table_slot, *table)
                                     : conn->send_method(id_, method, args);
    if (ec) {
      co_return ec;
    }
  }
  rpcs_.push_back(r);
  const auto deadline = clock::now() + rpc_timeout_;
  while (!r->done) {
    if (co_await rpc_event_.wait_until(deadline) == async_event::wake::timed_out && !r->done) {
      // The reply may still come; the entry stays queued so later replies still match in order.
      spdlog::warn("amqp: rpc timed out channel={} method={}", id_, amqp_method_name(method));
      co_return make_error_code(errc::timeout);
    }
  }
  out = r;
  co_return r->error;
}

asio::awaitable<std::error_code> channel::open() {
  std::shared_ptr<rpc> r;
  amqp_channel_open_t args{amqp_empty_bytes};
  const auto ec = co_await call(AMQP_CHANNEL_OPEN_METHOD, &args, AMQP_CHANNEL_OPEN_OK_METHOD, r);
  if (!ec && state_ == state::opening) {
    state_ = state::open;
  }
  co_return ec;
}

asio::awaitable<std::error_code> channel::close() {
  auto self = shared_from_this();
  if (state_ == state::closed) {
    co_return std::error_code{};
  }
  if (state_ == state::closing) {
    co_return make_error_code(errc::channel_closed);
  }
  // Recorded acks go before close: after it the broker would redeliver those messages.
  flush_acks();
  state_ = state::closing;
  const std::string text = "client closed the channel";
  amqp_channel_close_t args{200, to_amqp_bytes(text), 0, 0};
  {
    const auto conn = owner_.lock();
    if (!conn || conn->send_method(id_, AMQP_CHANNEL_CLOSE_METHOD, &args)) {
      close_reason r;
      r.error = make_error_code(errc::channel_closed);
      shut(r);
      co_return std::error_code{};
    }
  }
  const auto deadline = clock::now() + rpc_timeout_;
  while (state_ != state::closed) {
    if (co_await rpc_event_.wait_until(deadline) == async_event::wake::timed_out &&
        state_ != state::closed) {
      // The channel number stays taken: reusing it before close-ok would confuse the broker.
      close_reason r;
      r.error = make_error_code(errc::timeout);
      shut(r);
      co_return make_error_code(errc::timeout);
    }
  }
  co_return std::error_code{};
}

asio::awaitable<std::error_code> channel::exchange_declare(std::string name, std::string type,
                                                           exchange_options options) {
  std::shared_ptr<rpc> r;
  amqp_exchange_declare_t args{};
  args.exchange = to_amqp_bytes(name);
  args.type = to_amqp_bytes(type);
  args.passive = options.passive;
  args.durable = options.durable;
  args.auto_delete = options.auto_delete;
  args.internal = options.internal;
  args.nowait = 0;
  co_return co_await call(AMQP_EXCHANGE_DECLARE_METHOD, &args, AMQP_EXCHANGE_DECLARE_OK_METHOD, r,
                          &args.arguments, &options.arguments);
}

asio::awaitable<std::error_code> channel::exchange_delete(std::string name, bool if_unused) {
  std::shared_ptr<rpc> r;
  amqp_exchange_delete_t args{0, to_amqp_bytes(name), if_unused, 0};
  co_return co_await call(AMQP_EXCHANGE_DELETE_METHOD, &args, AMQP_EXCHANGE_DELETE_OK_METHOD, r);
}

asio::awaitable<std::tuple<std::error_code, queue_declare_ok>> channel::queue_declare(
    std::string name, queue_options options) {
  std::shared_ptr<rpc> r;
  amqp_queue_declare_t args{};
  args.queue = to_amqp_bytes(name);
  args.passive = options.passive;
  args.durable = options.durable;
  args.exclusive = options.exclusive;
  args.auto_delete = options.auto_delete;
  args.nowait = 0;
  const auto ec = co_await call(AMQP_QUEUE_DECLARE_METHOD, &args, AMQP_QUEUE_DECLARE_OK_METHOD, r,
                                &args.arguments, &options.arguments);
  if (ec) {
    co_return std::tuple{ec, queue_declare_ok{}};
  }
  co_return std::tuple{ec, r->declare_ok};
}

asio::awaitable<std::error_code> channel::queue_bind(std::string queue, std::string exchange,
                                                     std::string routing_key,
                                                     field_table arguments) {
  std::shared_ptr<rpc> r;
  amqp_queue_bind_t args{};
  args.queue = to_amqp_bytes(queue);
  args.exchange = to_amqp_bytes(exchange);
  args.routing_key = to_amqp_bytes(routing_key);
  co_return co_await call(AMQP_QUEUE_BIND_METHOD, &args, AMQP_QUEUE_BIND_OK_METHOD, r,
                          &args.arguments, &arguments);
}

asio::awaitable<std::error_code> channel::queue_unbind(std::string queue, std::string exchange,
                                                       std::string routing_key,
                                                       field_table arguments) {
  std::shared_ptr<rpc> r;
  amqp_queue_unbind_t args{};
  args.queue = to_amqp_bytes(queue);
  args.exchange = to_amqp_bytes(exchange);
  args.routing_key = to_amqp_bytes(routing_key);
  co_return co_await call(AMQP_QUEUE_UNBIND_METHOD, &args, AMQP_QUEUE_UNBIND_OK_METHOD, r,
                          &args.arguments, &arguments);
}

asio::awaitable<std::tuple<std::error_code, std::uint32_t>> channel::queue_delete(std::string name,
                                                                                  bool if_unused,
                                                                                  bool if_empty) {
  std::shared_ptr<rpc> r;
  amqp_queue_delete_t args{0, to_amqp_bytes(name), if_unused, if_empty, 0};
  const auto ec = co_await call(AMQP_QUEUE_DELETE_METHOD, &args, AMQP_QUEUE_DELETE_OK_METHOD, r);
  co_return std::tuple{ec, ec ? 0U : r->message_count};
}

asio::awaitable<std::tuple<std::error_code, std::uint32_t>> channel::queue_purge(std::string name) {
  std::shared_ptr<rpc> r;
  amqp_queue_purge_t args{0, to_amqp_bytes(name), 0};
  const auto ec = co_await call(AMQP_QUEUE_PURGE_METHOD, &args, AMQP_QUEUE_PURGE_OK_METHOD, r);
  co_return std::tuple{ec, ec ? 0U : r->message_count};
}

asio::awaitable<std::error_code> channel::basic_qos(std::uint16_t prefetch_count, bool global) {
  std::shared_ptr<rpc> r;
  amqp_basic_qos_t args{0, prefetch_count, global};
  co_return co_await call(AMQP_BASIC_QOS_METHOD, &args, AMQP_BASIC_QOS_OK_METHOD, r);
}

asio::awaitable<std::tuple<std::error_code, std::string>> channel::basic_consume(
    std::string queue, delivery_handler on_delivery, consume_options options,
    consumer_end_handler on_end) {
  auto self = shared_from_this();
  std::string tag = options.consumer_tag;
  if (tag.empty()) {
    tag = "sluice." + std::to_string(id_) + "." + std::to_string(next_consumer_tag_++);
  }
  if (consumers_.contains(tag) || !on_delivery) {
    co_return std::tuple{make_error_code(errc::invalid_argument), std::string{}};
  }
  // Registered first: deliveries may follow consume-ok in the same read, before we resume.
  consumers_.emplace(tag, std::make_shared<consumer_entry>(consumer_entry{
                              std::move(on_delivery), std::move(on_end), options.no_ack}));
  std::shared_ptr<rpc> r;
  amqp_basic_consume_t args{};
  args.queue = to_amqp_bytes(queue);
  args.consumer_tag = to_amqp_bytes(tag);
  args.no_local = 0;
  args.no_ack = options.no_ack;
  args.exclusive = options.exclusive;
  args.nowait = 0;
  const auto ec = co_await call(AMQP_BASIC_CONSUME_METHOD, &args, AMQP_BASIC_CONSUME_OK_METHOD, r,
                                &args.arguments, &options.arguments);
  if (ec) {
    consumers_.erase(tag);
    co_return std::tuple{ec, std::string{}};
  }
  co_return std::tuple{std::error_code{}, std::move(tag)};
}

asio::awaitable<std::error_code> channel::basic_cancel(std::string consumer_tag) {
  auto self = shared_from_this();
  std::shared_ptr<rpc> r;
  amqp_basic_cancel_t args{to_amqp_bytes(consumer_tag), 0};
  const auto ec = co_await call(AMQP_BASIC_CANCEL_METHOD, &args, AMQP_BASIC_CANCEL_OK_METHOD, r);
  consumers_.erase(consumer_tag);
  co_return ec;
}

asio::awaitable<std::error_code> channel::confirm_select() {
  std::shared_ptr<rpc> r;
  amqp_confirm_select_t args{0};
  // The broker numbers publishes from 1 starting with the first one after confirm.select.
  const bool was_confirm = confirm_mode_;
  if (!was_confirm) {
    confirm_mode_ = true;
    next_publish_seq_ = 1;
  }
  const auto ec =
      co_await call(AMQP_CONFIRM_SELECT_METHOD, &args, AMQP_CONFIRM_SELECT_OK_METHOD, r);
  if (ec && !was_confirm) {
    confirm_mode_ = false;
    next_publish_seq_ = 0;
  }
  co_return ec;
}

std::error_code channel::basic_ack(std::uint64_t delivery_tag, bool multiple) {
  if (!multiple) {
    acks_.settled(delivery_tag);
  } else {
    // Everything up to the tag is settled by this frame: the recorded acks leave before it, and
    // the window forgets the tags it covers (left open, they would block every later run).
    flush_acks();
    acks_.settled_through(delivery_tag);
  }
  amqp_basic_ack_t args{delivery_tag, multiple};
  return send(AMQP_BASIC_ACK_METHOD, &args);
}

std::error_code channel::basic_nack(std::uint64_t delivery_tag, bool multiple, bool requeue) {
  if (!multiple) {
    acks_.settled(delivery_tag);
  } else {
    flush_acks();
    acks_.settled_through(delivery_tag);
  }
  amqp_basic_nack_t args{delivery_tag, multiple, requeue};
  return send(AMQP_BASIC_NACK_METHOD, &args);
}

std::error_code channel::basic_reject(std::uint64_t delivery_tag, bool requeue) {
  acks_.settled(delivery_tag);
  amqp_basic_reject_t args{delivery_tag, requeue};
  return send(AMQP_BASIC_REJECT_METHOD, &args);
}

std::error_code channel::ack_delivery(std::uint64_t delivery_tag) {
  if (state_ != state::open) {
    return closed_error(reason_);
  }
  if (!acks_.ack(delivery_tag)) {
    return basic_ack(delivery_tag);
  }
  if (!ack_flush_requested_) {
    const auto conn = owner_.lock();
    if (!conn) {
      acks_.clear();
      return make_error_code(errc::connection_closed);
    }
    ack_flush_requested_ = true;
    conn->request_ack_flush(weak_from_this());
  }
  return {};
}

void channel::flush_acks() {
  ack_flush_requested_ = false;
  if (state_ != state::open) {
    acks_.clear();
    return;
  }
  for (const auto& f : acks_.take()) {
    amqp_basic_ack_t args{f.delivery_tag, f.multiple};
    send(AMQP_BASIC_ACK_METHOD, &args);
  }
}

std::error_code channel::basic_publish(std::string_view exchange, std::string_view routing_key,
                                       const message_properties& properties, std::string_view body,
                                       bool mandatory) {
  const auto conn = owner_.lock();
  if (!conn || state_ != state::open) {
    return closed_error(reason_);
  }
  amqp_basic_publish_t args{0, to_amqp_bytes(exchange), to_amqp_bytes(routing_key), mandatory, 0};
  if (auto ec = conn->send_method(id_, AMQP_BASIC_PUBLISH_METHOD, &args)) {
    return ec;
  }
  if (auto ec = conn->send_content(id_, properties, body)) {
    // The method frame is already queued without its content; only a dead connection helps.
    conn->abort(ec);
    return ec;
  }
  if (confirm_mode_) {
    ++next_publish_seq_;
  }
  return {};
}

std::error_code channel::on_frame(const amqp_frame_t& frame) {
  if (state_ == state::closed) {
    return {};
  }
  switch (frame.frame_type) {
    case AMQP_FRAME_METHOD:
      return on_method(frame.payload.method);
    case AMQP_FRAME_HEADER: {
      if (incoming_.kind == content_kind::none || incoming_.header_seen) {
        return make_error_code(errc::protocol_error);
      }
      incoming_.header_seen = true;
      incoming_.body_size = frame.payload.properties.body_size;
      incoming_.message.properties = from_amqp_properties(
          *static_cast<const amqp_basic_properties_t*>(frame.payload.properties.decoded));
      if (incoming_.body_size == 0) {
        finish_content();
      } else {
        incoming_.message.body.reserve(incoming_.body_size);
      }
      return {};
    }
    case AMQP_FRAME_BODY: {
      if (incoming_.kind == content_kind::none || !incoming_.header_seen) {
        return make_error_code(errc::protocol_error);
      }
      const auto& b = frame.payload.body_fragment;
      incoming_.message.body.append(static_cast<const char*>(b.bytes), b.len);
      if (incoming_.message.body.size() > incoming_.body_size) {
        return make_error_code(errc::protocol_error);
      }
      if (incoming_.message.body.size() == incoming_.body_size) {
        finish_content();
      }
      return {};
    }
    default:
      return {};
  }
}

std::error_code channel::on_method(const amqp_method_t& method) {
  switch (method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
      close_reason r = close_reason_from(*static_cast<const amqp_channel_close_t*>(method.decoded));
      spdlog::warn("amqp: broker closed channel={} code={} text=\"{}\"", id_, r.reply_code,
                   r.reply_text);
      amqp_channel_close_ok_t ok{};
      const auto conn = owner_.lock();
      if (conn) {
        conn->send_method(id_, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
      }
      auto self = shared_from_this();
      shut(r);
      if (conn) {
        conn->release_channel(id_);
      }
      return {};
    }
    case AMQP_CHANNEL_CLOSE_OK_METHOD: {
      if (state_ != state::closing) {
        return make_error_code(errc::protocol_error);
      }
      close_reason r;
      r.error = make_error_code(errc::channel_closed);
      r.reply_text = "closed by the client";
      auto self = shared_from_this();
      shut(r);
      if (const auto conn = owner_.lock()) {
        conn->release_channel(id_);
      }
      return {};
    }
    default:
      break;
  }
  if (state_ == state::closing) {
    return {};
  }
  switch (method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
      if (incoming_.kind != content_kind::none) {
        return make_error_code(errc::protocol_error);
      }
      const auto& d = *static_cast<const amqp_basic_deliver_t*>(method.decoded);
      incoming_.kind = content_kind::deliver;
      incoming_.message.consumer_tag = to_string(d.consumer_tag);
      incoming_.message.delivery_tag = d.delivery_tag;
      incoming_.message.redelivered = d.redelivered != 0;
      incoming_.message.exchange = to_string(d.exchange);
      incoming_.message.routing_key = to_string(d.routing_key);
      return {};
    }
    case AMQP_BASIC_RETURN_METHOD: {
      if (incoming_.kind != content_kind::none) {
        return make_error_code(errc::protocol_error);
      }
      const auto& r = *static_cast<const amqp_basic_return_t*>(method.decoded);
      incoming_.kind = content_kind::ret;
      incoming_.reply_code = r.reply_code;
      incoming_.reply_text = to_string(r.reply_text);
      incoming_.message.exchange = to_string(r.exchange);
      incoming_.message.routing_key = to_string(r.routing_key);
      return {};
    }
    case AMQP_BASIC_ACK_METHOD: {
      const auto& a = *static_cast<const amqp_basic_ack_t*>(method.decoded);
      if (on_confirm_) {
        on_confirm_(a.delivery_tag, a.multiple != 0, true);
      }
      return {};
    }
    case AMQP_BASIC_NACK_METHOD: {
      const auto& n = *static_cast<const amqp_basic_nack_t*>(method.decoded);
      if (on_confirm_) {
        on_confirm_(n.delivery_tag, n.multiple != 0, false);
      }
      return {};
    }
    case AMQP_BASIC_CANCEL_METHOD: {
      const auto& c = *static_cast<const amqp_basic_cancel_t*>(method.decoded);
      const std::string tag = to_string(c.consumer_tag);
      spdlog::warn("amqp: broker cancelled consumer channel={} tag={}", id_, tag);
      if (!c.nowait) {
        amqp_basic_cancel_ok_t ok{c.consumer_tag};
        send(AMQP_BASIC_CANCEL_OK_METHOD, &ok);
      }
      const auto it = consumers_.find(tag);
      if (it != consumers_.end()) {
        const auto entry = it->second;
        consumers_.erase(it);
        if (entry->on_end) {
          close_reason r;
          r.error = make_error_code(errc::consumer_cancelled);
          r.reply_text = "consumer " + tag + " cancelled by the broker";
          entry->on_end(r);
        }
      }
      return {};
    }
    case AMQP_CHANNEL_FLOW_METHOD: {
      const auto& f = *static_cast<const amqp_channel_flow_t*>(method.decoded);
      amqp_channel_flow_ok_t ok{f.active};
      send(AMQP_CHANNEL_FLOW_OK_METHOD, &ok);
      return {};
    }
    default:
      return complete_rpc(method.id, method.decoded);
  }
}

std::error_code channel::complete_rpc(amqp_method_number_t id, const void* decoded) {
  if (rpcs_.empty() || rpcs_.front()->reply != id) {
    spdlog::error("amqp: unexpected method channel={} method={}", id_, amqp_method_name(id));
    return make_error_code(errc::protocol_error);
  }
  const auto r = rpcs_.front();
  rpcs_.pop_front();
  switch (id) {
    case AMQP_QUEUE_DECLARE_OK_METHOD: {
      const auto& ok = *static_cast<const amqp_queue_declare_ok_t*>(decoded);
      r->declare_ok = queue_declare_ok{to_string(ok.queue), ok.message_count, ok.consumer_count};
      break;
    }
    case AMQP_QUEUE_DELETE_OK_METHOD:
      r->message_count = static_cast<const amqp_queue_delete_ok_t*>(decoded)->message_count;
      break;
    case AMQP_QUEUE_PURGE_OK_METHOD:
      r->message_count = static_cast<const amqp_queue_purge_ok_t*>(decoded)->message_count;
      break;
    default:
      break;
  }
  r->done = true;
  rpc_event_.notify_all();
  return {};
}

void channel::finish_content() {
  incoming in = std::move(incoming_);
  incoming_ = incoming{};
  if (in.kind == content_kind::deliver) {
    const auto it = consumers_.find(in.message.consumer_tag);
    if (it == consumers_.end()) {
      // A delivery racing our basic.cancel (or after one that failed); unacked, it returns to
      // the queue with the channel. Until then it is outstanding on the broker, so the window
      // must know it: a multiple ack of later tags would otherwise ack it unhandled.
      spdlog::debug("amqp: delivery for unknown consumer channel={} tag={}", id_,
                    in.message.consumer_tag);
      acks_.delivered(in.message.delivery_tag);
      return;
    }
    const auto entry = it->second;
    in.message.source = weak_from_this();
    if (!entry->no_ack) {
      acks_.delivered(in.message.delivery_tag);
    }
    entry->on_delivery(std::move(in.message));
  } else if (in.kind == content_kind::ret) {
    if (on_return_) {
      on_return_(returned_message{in.reply_code, std::move(in.reply_text),
                                  std::move(in.message.exchange), std::move(in.message.routing_key),
                                  std::move(in.message.properties), std::move(in.message.body)});
    }
  }
}

void channel::on_connection_closed(const close_reason& why) {
  auto self = shared_from_this();
  if (state_ != state::closed) {
    closed_with_connection_ = true;
  }
  shut(why);
}

void channel::shut(const close_reason& why) {
  if (state_ == state::closed) {
    return;
  }
  state_ = state::closed;
  reason_ = why;
  if (!reason_.error) {
    reason_.error = make_error_code(errc::channel_closed);
  }
  for (const auto& r : rpcs_) {
    r->done = true;
    r->error = reason_.error;
  }
  rpcs_.clear();
  rpc_event_.notify_all();
  incoming_ = incoming{};
  acks_.clear();
  auto consumers = std::exchange(consumers_, {});
  for (const auto& [tag, entry] : consumers) {
    if (entry->on_end) {
      entry->on_end(reason_);
    }
  }
  auto listeners = std::exchange(closed_listeners_, {});
  for (const auto& l : listeners) {
    l(reason_);
  }
}

}  // namespace sluice::amqp
