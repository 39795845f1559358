#include "sluice/amqp/publisher.hpp"

#include <algorithm>
#include <optional>

#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/delivery.hpp"

#include <spdlog/spdlog.h>

namespace sluice::amqp {

namespace asio = boost::asio;

const char* to_string(publish_outcome outcome) {
  switch (outcome) {
    case publish_outcome::acked:
      return "acked";
    case publish_outcome::nacked:
      return "nacked";
    case publish_outcome::returned:
      return "returned";
    case publish_outcome::failed:
      return "failed";
  }
  return "unknown";
}

std::shared_ptr<publisher> publisher::create(publisher_options options) {
  return std::shared_ptr<publisher>(new publisher(std::move(options)));
}

publisher::publisher(publisher_options options) : options_(std::move(options)) {
  if (options_.confirm_window == 0) {
    options_.confirm_window = 1;
  }
  if (options_.confirm_window_bytes == 0) {
    options_.confirm_window_bytes = 1;
  }
}

std::size_t publisher::window_bytes(const outgoing_message& message) {
  const auto& p = message.properties;
  std::size_t n = message.body.size() + message.exchange.size() + message.routing_key.size();
  for (const auto* s : {&p.content_type, &p.content_encoding, &p.correlation_id, &p.reply_to,
                        &p.expiration, &p.message_id, &p.type, &p.user_id, &p.app_id}) {
    if (*s) {
      n += (*s)->size();
    }
  }
  return n;
}

publisher::~publisher() = default;

bool publisher::ready() const {
  return !closed_ && channel_ != nullptr && channel_->is_open() && !blocked_;
}

asio::awaitable<std::error_code> publisher::publish(outgoing_message message,
                                                    publish_callback on_result,
                                                    clock::time_point until) {
  auto self = shared_from_this();
  // Refused before it takes a slot: sent, it would fail to encode after its method frame and
  // cost the connection, and every re-send after the reconnect would do it again.
  if (message.exchange.size() > max_short_string_bytes ||
      message.routing_key.size() > max_short_string_bytes ||
      oversized_property(message.properties) != nullptr) {
    ++stats_.unencodable;
    co_return make_error_code(errc::invalid_argument);
  }
  if (!ready() || window_full()) {
    const auto deadline = std::min(until, clock::now() + options_.publish_timeout);
    while (!closed_ && (!ready() || window_full())) {
      if (co_await event_.wait_until(deadline) == async_event::wake::timed_out && !closed_ &&
          (!ready() || window_full())) {
        ++stats_.slot_timeouts;
        co_return make_error_code(errc::timeout);
      }
    }
  }
  if (closed_) {
    co_return make_error_code(errc::shutting_down);
  }
  const std::uint64_t seq = next_seq_++;
  const std::size_t bytes = window_bytes(message);
  auto [it, inserted] = unconfirmed_.emplace(
      seq, entry{std::move(message), std::move(on_result), clock::now(), bytes, 0, false, 0, {}});
  unconfirmed_bytes_ += bytes;
  ++stats_.published;
  send(seq, it->second);
  co_return std::error_code{};
}

asio::awaitable<publish_result> publisher::publish_and_wait(outgoing_message message) {
  struct waiter {
    std::optional<publish_result> result;
    async_event event;
  };
  auto self = shared_from_this();
  auto w = std::make_shared<waiter>();
  // Named, not a temporary inside the co_await: g++ 12 may destroy such temporaries twice.
  publish_callback on_result = [w](publish_result r) {
    w->result = std::move(r);
    w->event.notify_all();
  };
  const auto ec = co_await publish(std::move(message), std::move(on_result));
  if (ec) {
    publish_result r;
    r.error = ec;
    co_return r;
  }
  const auto deadline = clock::now() + options_.confirm_timeout;
  while (!w->result) {
    if (co_await w->event.wait_until(deadline) == async_event::wake::timed_out && !w->result) {
      publish_result r;
      r.error = make_error_code(errc::timeout);
      r.reply_text = "no confirm within confirm_timeout; the message may still be confirmed";
      co_return r;
    }
  }
  co_return std::move(*w->result);
}

asio::awaitable<bool> publisher::wait_idle(clock::time_point deadline) {
  auto self = shared_from_this();
  while (!unconfirmed_.empty()) {
    if (co_await event_.wait_until(deadline) == async_event::wake::timed_out) {
      co_return unconfirmed_.empty();
    }
  }
  co_return true;
}

void publisher::attach(std::shared_ptr<channel> ch) {
  channel_ = std::move(ch);
  by_tag_.clear();
  blocked_ = channel_->is_connection_blocked();
  const std::weak_ptr<publisher> weak = weak_from_this();
  channel_->set_confirm_handler([weak](std::uint64_t tag, bool multiple, bool ack) {
    if (const auto self = weak.lock()) {
      self->on_confirm(tag, multiple, ack);
    }
  });
  channel_->set_return_handler([weak](returned_message m) {
    if (const auto self = weak.lock()) {
      self->on_return(std::move(m));
    }
  });
  channel_->on_closed([weak, raw = channel_.get()](const close_reason& why) {
    if (const auto self = weak.lock()) {
      self->on_channel_closed(raw, why);
    }
  });
  if (!unconfirmed_.empty()) {
    spdlog::info("amqp: re-sending unconfirmed messages count={}", unconfirmed_.size());
  }
  for (auto& [seq, e] : unconfirmed_) {
    if (e.attempts > 0) {
      ++stats_.resent;
    }
    e.returned = false;
    send(seq, e);
  }
  event_.notify_all();
  if (on_ready_) {
    on_ready_();
  }
}

void publisher::set_blocked(bool blocked) {
  blocked_ = blocked;
  if (!blocked) {
    event_.notify_all();
    if (on_ready_) {
      on_ready_();
    }
  }
}

void publisher::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  fail_all(make_error_code(errc::shutting_down), "publisher closed");
  event_.notify_all();
}

void publisher::send(std::uint64_t seq, entry& e) {
  if (!channel_ || !channel_->is_open()) {
    return;  // stays unconfirmed; sent on the next attach
  }
  const std::uint64_t tag = channel_->next_publish_seq();
  const auto& m = e.message;
  if (channel_->basic_publish(m.exchange, m.routing_key, m.properties, m.body, m.mandatory)) {
    return;
  }
  by_tag_.emplace(tag, seq);
  ++e.attempts;
  ++stats_.sent;
}

void publisher::on_confirm(std::uint64_t delivery_tag, bool multiple, bool ack) {
  ++stats_.confirm_frames;
  const auto outcome = ack ? publish_outcome::acked : publish_outcome::nacked;
  if (multiple) {
    // Collected first: a callback may close the publisher, which clears by_tag_.
    settling_.clear();
    const auto end = by_tag_.upper_bound(delivery_tag);
    for (auto it = by_tag_.begin(); it != end; it = by_tag_.erase(it)) {
      settling_.push_back(it->second);
    }
    for (const auto seq : settling_) {
      settle(seq, outcome, {}, {});
    }
  } else if (const auto it = by_tag_.find(delivery_tag); it != by_tag_.end()) {
    const auto seq = it->second;
    by_tag_.erase(it);
    settle(seq, outcome, {}, {});
  }
  if (event_.waiters() != 0) {
    event_.notify_all();
  }
}

void publisher::on_return(returned_message message) {
  // basic.return carries no delivery tag, but the broker sends it before the ack of the same
  // publish, in publish order: the oldest unsettled mandatory publish to the same exchange and
  // routing key (and message_id, when set) is the one. Unique message ids make this exact.
  for (const auto& [tag, seq] : by_tag_) {
    auto& e = unconfirmed_.at(seq);
    const auto& m = e.message;
    if (!m.mandatory || e.returned || m.exchange != message.exchange ||
        m.routing_key != message.routing_key ||
        m.properties.message_id != message.properties.message_id) {
      continue;
    }
    e.returned = true;
    e.return_code = message.reply_code;
    e.return_text = std::move(message.reply_text);
    return;
  }
  spdlog::warn("amqp: basic.return matched no unconfirmed publish exchange={} routing_key={}",
               message.exchange, message.routing_key);
}

void publisher::on_channel_closed(const channel* ch, const close_reason& why) {
  if (ch != channel_.get()) {
    return;
  }
  const bool channel_error = !channel_->closed_with_connection() && why.reply_code != 0;
  channel_.reset();
  by_tag_.clear();
  if (channel_error && !unconfirmed_.empty()) {
    spdlog::warn("amqp: publisher channel failed, unconfirmed messages fail count={} reason=\"{}\"",
                 unconfirmed_.size(), why.to_string());
    fail_all(why.error, why.reply_text);
  }
  event_.notify_all();
}

void publisher::settle(std::uint64_t seq, publish_outcome outcome, std::error_code error,
                       std::string reply_text) {
  auto node = unconfirmed_.extract(seq);
  if (node.empty()) {
    return;
  }
  entry& e = node.mapped();
  unconfirmed_bytes_ -= e.bytes;
  publish_result r;
  r.latency = clock::now() - e.accepted;
  r.attempts = e.attempts;
  r.outcome = outcome;
  r.error = error;
  r.reply_text = std::move(reply_text);
  if (outcome == publish_outcome::acked && e.returned) {
    r.outcome = publish_outcome::returned;
    r.error = make_error_code(static_cast<reply_code>(e.return_code));
    r.reply_text = std::move(e.return_text);
  }
  switch (r.outcome) {
    case publish_outcome::acked:
      ++stats_.acked;
      break;
    case publish_outcome::nacked:
      ++stats_.nacked;
      break;
    case publish_outcome::returned:
      ++stats_.returned;
      break;
    case publish_outcome::failed:
      ++stats_.failed;
      break;
  }
  if (options_.observer) {
    options_.observer(r);
  }
  if (e.on_result) {
    e.on_result(std::move(r));
  }
}

void publisher::fail_all(std::error_code error, const std::string& text) {
  by_tag_.clear();
  while (!unconfirmed_.empty()) {
    settle(unconfirmed_.begin()->first, publish_outcome::failed, error, text);
  }
}

}  // namespace sluice::amqp
