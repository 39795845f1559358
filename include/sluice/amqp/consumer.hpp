#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>

#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/delivery.hpp"
#include "sluice/amqp/error.hpp"
#include "sluice/core/async_event.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::amqp {

// The pull form of basic.consume: deliveries wait here until receive() takes them. Unless
// no_ack is set, the broker keeps at most the channel's prefetch (basic_qos) unacknowledged,
// which bounds this buffer; set a prefetch, or a slow reader lets it grow.
class consumer : public std::enable_shared_from_this<consumer> {
 public:
  using clock = std::chrono::steady_clock;

  static boost::asio::awaitable<std::tuple<std::error_code, std::shared_ptr<consumer>>> start(
      std::shared_ptr<channel> ch, std::string queue, consume_options options = {});
  ~consumer();
  consumer(const consumer&) = delete;
  consumer& operator=(const consumer&) = delete;

  // The next delivery; errc::timeout at the deadline, or the reason once the consumer ended
  // (channel closed, broker cancel). Buffered acknowledgeable deliveries of an ended consumer
  // are dropped: their channel is gone, so the broker redelivers them anyway.
  boost::asio::awaitable<std::tuple<std::error_code, delivery>> receive(clock::time_point deadline);
  boost::asio::awaitable<std::error_code> cancel();

  const std::string& tag() const { return tag_; }
  std::size_t buffered() const { return buffer_.size(); }
  bool active() const { return active_; }
  const close_reason& reason() const { return reason_; }
  const std::shared_ptr<channel>& get_channel() const { return channel_; }

 private:
  consumer(std::shared_ptr<channel> ch, bool no_ack);
  void on_end(const close_reason& why);

  std::shared_ptr<channel> channel_;
  bool no_ack_;
  std::string tag_;
  bool active_ = true;
  close_reason reason_;
  std::deque<delivery> buffer_;
  async_event event_;
};

}  // namespace sluice::amqp
