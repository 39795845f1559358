#include "test_worker.hpp"

#include <future>
#include <stdexcept>

#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/url.hpp"
#include "sluice/rpc/rpc_topology.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

namespace sluice::proxy::test {
namespace asio = boost::asio;

struct test_worker::state {
  std::shared_ptr<amqp::connection> conn;
  std::shared_ptr<amqp::channel> ch;
};

test_worker::test_worker(std::string amqp_url, services::service service, std::string flavour,
                         mode m)
    : url_(std::move(amqp_url)),
      service_(std::move(service)),
      flavour_(std::move(flavour)),
      mode_(m),
      state_(std::make_shared<state>()) {}

test_worker::~test_worker() {
  stop();
}

void test_worker::start() {
  std::promise<std::string> ready;
  auto result = ready.get_future();
  asio::co_spawn(
      io_,
      [this, &ready]() -> asio::awaitable<void> {
        std::string why;
        const auto u = amqp::url::parse(url_, &why);
        if (!u) {
          ready.set_value("bad url: " + why);
          co_return;
        }
        amqp::connection_options o;
        o.server = *u;
        o.connect_timeout = std::chrono::seconds(5);
        o.connection_name = "sluice-test-worker";
        state_->conn = amqp::connection::create(io_.get_executor(), o);
        if (const auto ec = co_await state_->conn->open()) {
          ready.set_value("connect: " + ec.message());
          co_return;
        }
        auto [ec, ch] = co_await state_->conn->open_channel();
        if (!ec)
          ec = co_await rpc::declare_service_topology(*ch, service_);
        if (!ec)
          ec = co_await ch->basic_qos(200);
        if (ec) {
          ready.set_value("setup: " + ec.message() + " " + ch->reason().to_string());
          co_return;
        }
        state_->ch = ch;
        amqp::delivery_handler handler = [this](amqp::delivery d) { on_delivery(d); };
        amqp::consume_options opts;
        opts.no_ack = true;
        auto [cec, tag] = co_await ch->basic_consume(service_.queue(flavour_), handler, opts);
        ready.set_value(cec ? "consume: " + cec.message() : "");
      },
      asio::detached);
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(io_);
    io_.run();
  });
  if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready)
    throw std::runtime_error("test worker did not start");
  if (const auto error = result.get(); !error.empty())
    throw std::runtime_error("test worker: " + error);
}

void test_worker::stop() {
  if (!thread_.joinable())
    return;
  std::promise<void> closed;
  asio::co_spawn(
      io_,
      [this, &closed]() -> asio::awaitable<void> {
        if (state_->conn && state_->conn->is_open())
          co_await state_->conn->close();
        closed.set_value();
      },
      asio::detached);
  closed.get_future().wait_for(std::chrono::seconds(10));
  io_.stop();
  thread_.join();
}

void test_worker::on_delivery(const amqp::delivery& d) {
  std::string why;
  auto request = rpc::decode_request(d, &why);
  if (!request)
    return;
  const auto to = rpc::reply_address_of(d);
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(*request);
    if (mode_ == mode::hold)
      held_.emplace_back(*request, to);
  }
  changed_.notify_all();
  if (mode_ != mode::hold)
    reply(*request, to);
}

void test_worker::reply(const rpc::rpc_request& request, const rpc::reply_address& to) {
  rpc::rpc_reply r;
  if (mode_ == mode::error) {
    r.error_code = "upstream_unavailable";
    r.error_message = "connection refused by the target";
  } else {
    r.status = 200;
    for (const auto& [name, value] : request.headers) {
      if (name == "X-Want-Status")
        r.status = std::stoi(value);
    }
    r.headers = {{"Content-Type", "application/octet-stream"},
                 {"X-Echo-Method", request.method},
                 {"X-Echo-Target", request.target},
                 {"Set-Cookie", "a=1"},
                 {"Set-Cookie", "b=2"},
                 {"Connection", "close"}};
    r.body = request.body;
  }
  const auto m = rpc::encode_reply(r, to);
  state_->ch->basic_publish(m.exchange, m.routing_key, m.properties, m.body);
}

void test_worker::release_held() {
  std::promise<void> done;
  asio::post(io_, [this, &done] {
    std::vector<std::pair<rpc::rpc_request, rpc::reply_address>> held;
    {
      std::lock_guard lock(mutex_);
      held.swap(held_);
    }
    const auto saved = mode_;
    mode_ = mode::echo;
    for (const auto& [request, to] : held)
      reply(request, to);
    mode_ = saved;
    done.set_value();
  });
  done.get_future().wait();
}

std::size_t test_worker::received() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

std::vector<rpc::rpc_request> test_worker::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

bool test_worker::wait_received(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

}  // namespace sluice::proxy::test
