#include "sluice/amqp/consumer.hpp"

namespace sluice::amqp {

namespace asio = boost::asio;

consumer::consumer(std::shared_ptr<channel> ch, bool no_ack)
    : channel_(std::move(ch)), no_ack_(no_ack) {}

consumer::~consumer() = default;

asio::awaitable<std::tuple<std::error_code, std::shared_ptr<consumer>>> consumer::start(
    std::shared_ptr<channel> ch, std::string queue, consume_options options) {
  auto self = std::shared_ptr<consumer>(new consumer(ch, options.no_ack));
  const std::weak_ptr<consumer> weak = self;
  // Named, not temporaries inside the co_await: g++ 12 may destroy such temporaries twice.
  delivery_handler on_delivery = [weak](delivery d) {
    if (const auto c = weak.lock()) {
      c->buffer_.push_back(std::move(d));
      c->event_.notify_all();
    }
  };
  consumer_end_handler on_end = [weak](const close_reason& why) {
    if (const auto c = weak.lock()) {
      c->on_end(why);
    }
  };
  auto [ec, tag] = co_await ch->basic_consume(std::move(queue), std::move(on_delivery),
                                              std::move(options), std::move(on_end));
  if (ec) {
    co_return std::tuple{ec, std::shared_ptr<consumer>{}};
  }
  self->tag_ = std::move(tag);
  co_return std::tuple{std::error_code{}, std::move(self)};
}

void consumer::on_end(const close_reason& why) {
  active_ = false;
  reason_ = why;
  if (!no_ack_) {
    buffer_.clear();
  }
  event_.notify_all();
}

asio::awaitable<std::tuple<std::error_code, delivery>> consumer::receive(
    clock::time_point deadline) {
  auto self = shared_from_this();
  while (buffer_.empty()) {
    if (!active_) {
      co_return std::tuple{reason_.error ? reason_.error : make_error_code(errc::channel_closed),
                           delivery{}};
    }
    if (co_await event_.wait_until(deadline) == async_event::wake::timed_out && buffer_.empty()) {
      co_return std::tuple{make_error_code(errc::timeout), delivery{}};
    }
  }
  delivery d = std::move(buffer_.front());
  buffer_.pop_front();
  co_return std::tuple{std::error_code{}, std::move(d)};
}

asio::awaitable<std::error_code> consumer::cancel() {
  auto self = shared_from_this();
  if (!active_) {
    co_return std::error_code{};
  }
  const auto ec = co_await channel_->basic_cancel(tag_);
  if (!ec) {
    active_ = false;
    reason_.error = make_error_code(errc::consumer_cancelled);
    reason_.reply_text = "cancelled by the client";
    event_.notify_all();
  }
  co_return ec;
}

}  // namespace sluice::amqp
