#include "sluice/worker/flavour_consumer.hpp"

#include <algorithm>
#include <random>

#include "sluice/rpc/rpc_topology.hpp"
#include "sluice/worker/batch_call.hpp"
#include "sluice/worker/forward_outcome.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

namespace sluice::worker {
namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds retry_initial{500};
constexpr milliseconds retry_max{30'000};
constexpr milliseconds store_retry_initial{100};
constexpr milliseconds store_retry_max{5'000};

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool same_origin(const target_origin& a, const target_origin& b) {
  return a.host == b.host && a.port == b.port && a.base_path == b.base_path;
}

}  // namespace

bool consumer_config::same_as(const consumer_config& o) const {
  const bool same_batch =
      batch.has_value() == o.batch.has_value() &&
      (!batch || (batch->max_requests == o.batch->max_requests &&
                  batch->max_wait == o.batch->max_wait && same_origin(batch_url, o.batch_url)));
  return service == o.service && flavour == o.flavour && queue == o.queue &&
         prefetch == o.prefetch && timeout == o.timeout && same_origin(target, o.target) &&
         target_error == o.target_error && same_batch && route == o.route && has_url == o.has_url;
}

worker_context::worker_context(asio::any_io_executor ex, std::shared_ptr<amqp::client> client,
                               http::client& http_client, metrics::registry& registry)
    : executor(std::move(ex)), amqp(std::move(client)), http(http_client), metrics(registry) {}

flavour_consumer::flavour_consumer(std::shared_ptr<worker_context> context, consumer_config config,
                                   std::shared_ptr<flavour_consumer> predecessor)
    : context_(std::move(context)),
      config_(std::move(config)),
      predecessor_(std::move(predecessor)),
      metrics_(context_->metrics, config_.service, config_.flavour, config_.queue),
      handlers_(context_->executor, "request") {
  if (config_.route) {
    std::optional<target_origin> fallback;
    if (config_.has_url)
      fallback = config_.batch ? config_.batch_url : config_.target;
    route_.emplace(*config_.route, std::move(fallback), config_.target_error);
  }
  if (config_.batch) {
    const auto ctx = context_.get();
    const target_origin fixed = config_.batch_url;
    // The route (when there is one) outlives the assembler: both are this consumer's, and run()
    // stops the assembler before it returns.
    flavour_route* route = route_ ? &*route_ : nullptr;
    batch_assembler::sender send = [ctx, fixed, route](
                                       const std::vector<batch_assembler::item>& items,
                                       batch_assembler::clock::time_point deadline)
        -> asio::awaitable<std::vector<rpc::rpc_reply>> {
      target_origin url = fixed;
      if (route) {
        // One call to one URL: the batch resolves the flavour's key once, without overrides.
        flavour_route::pick p = co_await route->choose(ctx->routes, nullptr);
        if (p.error)
          co_return std::vector<rpc::rpc_reply>(items.size(), *p.error);
        url = std::move(p.origin);
      }
      http_transport transport = [ctx](http::client_request request,
                                       http::client::clock::time_point until) {
        return ctx->http.send(std::move(request), until);
      };
      std::string why;
      auto replies = co_await call_batch(transport, url, items, deadline, &why);
      if (!why.empty())
        spdlog::warn("worker: batch of {} to {}:{}{} failed: {}", items.size(), url.host, url.port,
                     url.base_path, why);
      co_return replies;
    };
    batches_ = std::make_unique<batch_assembler>(context_->executor, *config_.batch, send);
  }
}

flavour_consumer::~flavour_consumer() = default;

void flavour_consumer::stop() {
  if (stopping_)
    return;
  stopping_ = true;
  stop_deadline_ = clock::now() + context_->stop_grace;
  event_.notify_all();
}

asio::awaitable<void> flavour_consumer::wait_finished() {
  auto self = shared_from_this();
  while (!finished_)
    co_await finished_event_.wait_until(clock::time_point::max());
}

consumer_status flavour_consumer::status() const {
  consumer_status s;
  s.service = config_.service;
  s.flavour = config_.flavour;
  s.queue = config_.queue;
  s.consuming = consuming_;
  s.in_flight = in_flight_;
  s.last_error = last_error_;
  return s;
}

asio::awaitable<void> flavour_consumer::run() {
  auto self = shared_from_this();
  if (predecessor_) {
    co_await predecessor_->wait_finished();
    predecessor_.reset();
  }
  std::minstd_rand rng(std::random_device{}());
  milliseconds delay = retry_initial;
  const std::weak_ptr<flavour_consumer> weak = weak_from_this();
  while (!stopping_) {
    while (!context_->amqp->ready() && !stopping_)
      co_await event_.wait_until(clock::time_point::max());
    if (stopping_)
      break;
    auto [ec, ch] = co_await context_->amqp->open_channel();
    if (!ec)
      ec = co_await rpc::declare_service_topology(*ch, *config_.definition);
    if (!ec)
      ec = co_await ch->basic_qos(config_.prefetch);
    if (!ec) {
      ended_ = false;
      // Named, not temporaries inside the co_await: g++ 12 may destroy such temporaries twice.
      amqp::delivery_handler on_delivery = [weak](amqp::delivery d) {
        if (const auto c = weak.lock())
          c->handlers_.spawn(c->handle(std::move(d)), c);
      };
      amqp::consumer_end_handler on_end = [weak](const amqp::close_reason& why) {
        if (const auto c = weak.lock()) {
          c->ended_ = true;
          c->last_error_ = why.to_string();
          c->event_.notify_all();
        }
      };
      const amqp::consume_options options;
      auto [cec, tag] = co_await ch->basic_consume(config_.queue, std::move(on_delivery), options,
                                                   std::move(on_end));
      ec = cec;
      if (!ec) {
        delay = retry_initial;
        consuming_ = true;
        last_error_.clear();
        const target_origin& to = config_.batch ? config_.batch_url : config_.target;
        if (route_)
          spdlog::info("worker: consuming queue={} prefetch={} route={} fallback={}:{}{}{}",
                       config_.queue, config_.prefetch, routing::to_string(route_->key()),
                       config_.has_url ? to.host : "none", to.port, to.base_path,
                       config_.batch ? " (batch mode)" : "");
        else
          spdlog::info("worker: consuming queue={} prefetch={} target={}:{}{}{}", config_.queue,
                       config_.prefetch, to.host, to.port, to.base_path,
                       config_.batch ? " (batch mode)" : "");
        while (!stopping_ && !ended_ && ch->is_open())
          co_await event_.wait_until(clock::time_point::max());
        consuming_ = false;
        if (stopping_ && ch->is_open() && !ended_)
          co_await ch->basic_cancel(tag);
        if (stopping_) {
          co_await handlers_.wait(stop_deadline_);
        } else {
          spdlog::warn(
              "worker: consumer of queue={} ended reason=\"{}\"; {} requests in flight "
              "are left to the broker",
              config_.queue, ch->reason().to_string(), handlers_.running());
        }
        // Their deliveries can no longer be acked (the channel is gone, or closes now): the
        // broker redelivers them, so finishing them here would only answer twice.
        handlers_.cancel_all();
        co_await handlers_.wait(clock::time_point::max());
        if (ch->is_open())
          co_await ch->close();
        continue;
      }
    }
    last_error_ = ch && ch->reason().error ? ch->reason().to_string() : ec.message();
    if (ch && ch->is_open())
      co_await ch->close();
    const auto half = delay.count() / 2;
    std::uniform_int_distribution<std::int64_t> jitter(0, half);
    const auto pause = milliseconds(delay.count() - half + jitter(rng));
    spdlog::warn("worker: cannot consume queue={} reason=\"{}\" retry_in_ms={}", config_.queue,
                 last_error_, pause.count());
    const auto until = clock::now() + pause;
    while (!stopping_ && clock::now() < until)
      co_await event_.wait_until(until);
    delay = std::min(delay * 2, retry_max);
  }
  if (batches_)
    co_await batches_->stop(clock::now() + milliseconds(1'000));
  handlers_.cancel_all();
  co_await handlers_.wait(clock::time_point::max());
  finished_ = true;
  finished_event_.notify_all();
}

asio::awaitable<void> flavour_consumer::handle(amqp::delivery d) {
  auto self = shared_from_this();
  struct in_flight_guard {
    flavour_consumer& c;
    explicit in_flight_guard(flavour_consumer& consumer) : c(consumer) {
      ++c.in_flight_;
      c.metrics_.in_flight.inc();
    }
    ~in_flight_guard() {
      --c.in_flight_;
      c.metrics_.in_flight.dec();
    }
  } guard(*this);

  std::string why;
  auto request = rpc::decode_request(d, &why);
  if (!request) {
    d.reject(false);
    metrics_.count(outcome::malformed).inc();
    if (const auto suppressed = log_throttle_.admit())
      spdlog::warn("worker: malformed delivery rejected queue={} message_id={} reason=\"{}\"{}",
                   config_.queue, d.properties.message_id.value_or(""), why,
                   *suppressed ? fmt::format(" ({} similar lines suppressed)", *suppressed) : "");
    co_return;
  }
  const rpc::reply_address to = rpc::reply_address_of(d);
  const std::int64_t now_ms = unix_ms_now();
  if (request->deadline_ms > 0 && request->deadline_ms <= now_ms) {
    // The caller already got its 504: calling the target now would only do unwanted work.
    d.ack();
    metrics_.count(outcome::expired).inc();
    co_return;
  }
  if (request->service.empty())
    request->service = config_.service;
  const auto started = clock::now();
  const auto deadline = request->deadline_ms > 0
                            ? started + milliseconds(request->deadline_ms - now_ms)
                            : started + config_.timeout;
  std::string correlation_id = to.correlation_id.empty() ? request->id : to.correlation_id;
  if (correlation_id.empty())
    correlation_id = std::to_string(d.delivery_tag);

  rpc::rpc_reply reply = co_await forward(*request, correlation_id, deadline);
  // Cancelled (stop after the grace, or the channel lost): whatever the call ended with is not
  // the target's answer, and the delivery is the broker's to give out again.
  if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
    co_return;
  metrics_.forward_seconds.observe(std::chrono::duration<double>(clock::now() - started).count());
  metrics_.count(outcome_of(reply)).inc();

  if (!to.reply_to.empty()) {
    const amqp::outgoing_message m = rpc::encode_reply(reply, to);
    const auto ch = d.source.lock();
    if (!ch || ch->basic_publish(m.exchange, m.routing_key, m.properties, m.body))
      co_return;  // the channel is gone: no ack either, the broker redelivers
  }
  if (request->async) {
    if (context_->sink) {
      if (!co_await store(*request, reply))
        co_return;  // stopping: left unacked, redelivered (at-least-once to the target)
    } else if (!context_->warned_no_sink) {
      context_->warned_no_sink = true;
      spdlog::warn(
          "worker: an async request arrived but no response store is wired (no PostgreSQL): "
          "async requests are answered on their reply-to only and acked (id={})",
          request->id);
    }
  }
  d.ack();
}

asio::awaitable<rpc::rpc_reply> flavour_consumer::forward(const rpc::rpc_request& request,
                                                          const std::string& correlation_id,
                                                          clock::time_point deadline) {
  // With a route, target_error is about the fallback only: the route's choose() decides.
  if (!config_.target_error.empty() && !route_)
    co_return error_reply(502, upstream_unavailable, config_.target_error);
  if (batches_) {
    batch_assembler::item item;
    item.request = request;
    item.correlation_id = correlation_id;
    item.deadline = deadline;
    co_return co_await batches_->submit(std::move(item));
  }
  http::client_request out;
  if (route_) {
    flavour_route::pick p = co_await route_->choose(context_->routes, &request.headers);
    if (p.error)
      co_return std::move(*p.error);
    out = compose_request(request, p.origin);
  } else {
    out = compose_request(request, config_.target);
  }
  auto [ec, response] = co_await context_->http.send(std::move(out), deadline);
  if (ec == http::client_errc::cancelled)
    throw boost::system::system_error(asio::error::operation_aborted);
  if (ec)
    co_return reply_for_error(ec);
  co_return reply_for_response(std::move(response));
}

asio::awaitable<bool> flavour_consumer::store(const rpc::rpc_request& request,
                                              const rpc::rpc_reply& reply) {
  milliseconds pause = store_retry_initial;
  while (true) {
    const std::error_code ec = co_await context_->sink->store(request, reply);
    if (!ec)
      co_return true;
    metrics_.store_retries.inc();
    if (const auto suppressed = log_throttle_.admit())
      spdlog::warn(
          "worker: storing the response of async request id={} failed: {}; retry in {} "
          "ms{}",
          request.id, ec.message(), pause.count(),
          *suppressed ? fmt::format(" ({} similar lines suppressed)", *suppressed) : "");
    // The response stays here meanwhile: the prefetch bounds how many are kept.
    const auto until = clock::now() + pause;
    while (!stopping_ && clock::now() < until)
      co_await event_.wait_until(until);
    if (stopping_)
      co_return false;
    pause = std::min(pause * 2, store_retry_max);
  }
}

}  // namespace sluice::worker
