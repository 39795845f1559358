#include "sluice/proxy/proxy_service.hpp"

#include <algorithm>

#include "sluice/proxy/forwarding.hpp"
#include "sluice/services/flavour_pick.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::proxy {
namespace asio = boost::asio;

namespace {

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int status_of_error(const rpc::rpc_reply& reply) {
  if (reply.status >= 400 && reply.status <= 599)
    return reply.status;
  if (reply.error_code == "upstream_timeout")
    return 504;
  if (reply.error_code == "proxy_overloaded" || reply.error_code == "broker_unavailable")
    return 503;
  return 502;
}

}  // namespace

struct proxy_service::metric_set {
  explicit metric_set(metrics::registry& m)
      : requests(m.add_counter("sluice_proxy_requests_total",
                               "Proxied requests answered, by service, flavour and status.",
                               {"service", "flavour", "code"})),
        duration(m.add_histogram("sluice_proxy_duration_seconds",
                                 "Time from a proxied request to its answer.", {"service"},
                                 metrics::latency_buckets())),
        published(
            m.add_counter("sluice_proxy_published_total", "Proxied requests published to RabbitMQ.")
                .get()),
        timeouts(m.add_counter("sluice_proxy_timeouts_total",
                               "Proxied requests answered 504 because no reply came in time.")
                     .get()),
        late(m.add_counter("sluice_proxy_late_replies_total",
                           "Replies that came after their request stopped waiting (dropped).")
                 .get()),
        pending(m.add_gauge("sluice_proxy_pending", "Proxied requests waiting for a reply.").get()),
        pending_bytes(m.add_gauge("sluice_proxy_pending_bytes",
                                  "Request-body bytes of the proxied requests waiting for a reply.")
                          .get()) {}

  metrics::family<metrics::counter>& requests;
  metrics::family<metrics::histogram>& duration;
  metrics::counter& published;
  metrics::counter& timeouts;
  metrics::counter& late;
  metrics::gauge& pending;
  metrics::gauge& pending_bytes;
  std::uint64_t late_seen = 0;
};

// What every path of handle() knows once the service and flavour are settled.
struct proxy_service::prepared {
  services::service_registry::snapshot service;
  const services::flavour* flavour = nullptr;
  clock::time_point started;
  std::chrono::milliseconds timeout{0};
  rpc::rpc_request request;
};

proxy_service::proxy_service(asio::any_io_executor executor, services::service_registry& registry,
                             std::shared_ptr<amqp::client> client, metrics::registry& metrics,
                             proxy_options options)
    : executor_(std::move(executor)),
      registry_(registry),
      client_(std::move(client)),
      options_(std::move(options)),
      metrics_(std::make_unique<metric_set>(metrics)),
      waiters_(options_.limits),
      rng_(std::random_device{}()) {
  if (options_.link.instance_id.empty())
    options_.link.instance_id = ids_.next().to_string();
  waiters_.on_change([this] {
    metrics_->pending.set(static_cast<double>(waiters_.pending()));
    metrics_->pending_bytes.set(static_cast<double>(waiters_.pending_bytes()));
    if (waiters_.late_replies() != metrics_->late_seen) {
      metrics_->late.inc(static_cast<double>(waiters_.late_replies() - metrics_->late_seen));
      metrics_->late_seen = waiters_.late_replies();
    }
  });
  rpc_link::reply_handler on_reply = [this](amqp::delivery d) { this->on_reply(std::move(d)); };
  link_ = rpc_link::create(executor_, client_, options_.link, std::move(on_reply));
  registry_.on_change([link = std::weak_ptr<rpc_link>(link_)](const std::string& name) {
    if (const auto l = link.lock())
      l->forget_topology(name);
  });
}

proxy_service::~proxy_service() = default;

void proxy_service::start() {
  link_->start();
}

asio::awaitable<void> proxy_service::stop() {
  co_await link_->stop();
}

void proxy_service::on_reply(amqp::delivery d) {
  std::string why;
  auto reply = rpc::decode_reply(d, &why);
  const std::string correlation_id = d.properties.correlation_id.value_or("");
  if (!reply) {
    spdlog::warn("proxy: malformed reply dropped correlation_id={} why=\"{}\"", correlation_id,
                 why);
    return;
  }
  waiters_.deliver(correlation_id, std::move(*reply));
}

http::response proxy_service::broker_unavailable(std::string_view why) const {
  return http::overloaded_response(503, "broker_unavailable", why, options_.retry_after_seconds);
}

http::response proxy_service::from_reply(rpc::rpc_reply reply) const {
  if (!reply.error_code.empty()) {
    const int status = status_of_error(reply);
    const std::string message =
        reply.error_message.empty() ? "the target did not answer" : reply.error_message;
    return http::error_response(status, reply.error_code, message);
  }
  http::response r;
  r.status = reply.status;
  reply_headers(reply.headers, r);
  r.body = std::move(reply.body);
  return r;
}

asio::awaitable<std::optional<http::response>> proxy_service::publish(
    const services::service& s, const rpc::rpc_request& request, const rpc::reply_address& reply,
    clock::time_point deadline) {
  // Never wait for a broker that is not there: the client gets its 503 at once.
  if (!link_->ready())
    co_return broker_unavailable(client_->state() == amqp::client_state::blocked
                                     ? "RabbitMQ is blocking publishes (resource alarm)"
                                     : "RabbitMQ is not connected");
  if (const auto ec = co_await link_->ensure_topology(s, deadline))
    co_return broker_unavailable("declaring the service's queues failed: " + ec.message());
  auto message = rpc::encode_request(request, s.exchange(), reply, unix_ms_now());
  // Unroutable (a flavour queue deleted behind our back) comes back as basic.return.
  message.mandatory = true;
  const std::string correlation_id = reply.correlation_id;
  amqp::publish_callback on_result = [this, correlation_id](amqp::publish_result result) {
    if (result.outcome == amqp::publish_outcome::acked || correlation_id.empty())
      return;
    spdlog::warn("proxy: publish {} correlation_id={} reason=\"{}\"", to_string(result.outcome),
                 correlation_id,
                 result.reply_text.empty() ? result.error.message() : result.reply_text);
    waiters_.fail(correlation_id, broker_unavailable(std::string("RabbitMQ did not take the "
                                                                 "request: ") +
                                                     to_string(result.outcome)));
  };
  const auto ec = co_await link_->publisher()->publish(std::move(message), on_result, deadline);
  if (ec)
    co_return broker_unavailable("publishing failed: " + ec.message());
  metrics_->published.inc();
  co_return std::nullopt;
}

asio::awaitable<http::response> proxy_service::handle(http::request& req) {
  prepared p;
  p.started = clock::now();
  const std::string raw_service = req.params["service"];
  p.service = registry_.find(raw_service);
  if (!p.service) {
    metrics_->requests.with({"", "", "404"}).inc();
    co_return http::error_response(404, "service_not_found", "no service named " + raw_service);
  }
  const auto& s = *p.service;
  if (const auto pinned = req.header("X-Sluice-Flavour")) {
    p.flavour = s.find_flavour(*pinned);
    if (!p.flavour) {
      metrics_->requests.with({s.name, "", "400"}).inc();
      co_return http::error_response(
          400, "unknown_flavour", "service " + s.name + " has no flavour " + std::string(*pinned));
    }
  } else {
    const auto key = req.header("Idempotency-Key");
    p.flavour = services::pick_flavour(s, key ? *key : std::string_view(req.request_id),
                                       std::chrono::system_clock::now());
  }
  p.timeout = s.timeout;
  if (const auto given = req.header("X-Sluice-Timeout-Ms")) {
    const auto ms = parse_timeout_ms(*given);
    if (!ms) {
      metrics_->requests.with({s.name, p.flavour->name, "400"}).inc();
      co_return http::error_response(400, "invalid_timeout",
                                     "X-Sluice-Timeout-Ms must be a positive integer");
    }
    p.timeout = std::min(p.timeout, std::chrono::milliseconds(*ms));
  }

  auto& r = p.request;
  r.id = req.request_id;
  r.service = s.name;
  r.flavour = p.flavour->name;
  r.method = req.method;
  // Relative to the flavour's URL: the worker, which owns the target, prefixes its path, so a
  // request waiting in RabbitMQ goes where the service points when it is forwarded.
  r.target = relative_target(path_remainder(req, raw_service), raw_query(req));
  forwarding_info info;
  info.request_id = req.request_id;
  info.client_address = req.remote_address;
  r.headers = forward_request_headers(req, info, rng_);
  r.body = std::move(req.body);

  const auto prefer = parse_prefer(req);
  // Not a ?: of two co_awaits: g++ 12 destroys the result of such an expression twice.
  http::response answer;
  if (prefer.respond_async)
    answer = co_await handle_async(req, p, prefer.wait_seconds.value_or(0));
  else
    answer = co_await handle_sync(req, p);
  metrics_->requests.with({s.name, p.flavour->name, std::to_string(answer.status)}).inc();
  metrics_->duration.with({s.name}).observe(
      std::chrono::duration<double>(clock::now() - p.started).count());
  co_return answer;
}

asio::awaitable<http::response> proxy_service::handle_sync(http::request& req, prepared& p) {
  const auto& s = *p.service;
  const auto deadline = p.started + p.timeout;
  p.request.deadline_ms = unix_ms_now() + p.timeout.count();
  reply_waiters::refusal refused = reply_waiters::refusal::none;
  auto w = waiters_.add(ids_.next().to_string(), p.request.body.size(), deadline, &refused);
  if (!w) {
    co_return http::overloaded_response(
        503, "proxy_overloaded",
        refused == reply_waiters::refusal::too_many_bytes
            ? "too many request-body bytes are waiting for replies; retry later"
            : "too many requests are waiting for replies; retry later",
        options_.retry_after_seconds);
  }
  const rpc::reply_address reply{link_->reply_to(), w->correlation_id};
  if (auto refusal = co_await publish(s, p.request, reply, deadline)) {
    waiters_.remove(w);
    co_return std::move(*refusal);
  }
  const auto outcome = co_await waiters_.wait(w, req.client.get());
  waiters_.remove(w);
  switch (outcome) {
    case wait_outcome::replied:
      co_return from_reply(std::move(*w->reply));
    case wait_outcome::failed:
      co_return std::move(*w->failure);
    case wait_outcome::disconnected:
      // Nobody reads this; 499 (nginx's "client closed request") tells it apart in metrics.
      co_return http::error_response(499, "client_closed", "the client closed the connection");
    case wait_outcome::timed_out:
      break;
  }
  metrics_->timeouts.inc();
  co_return http::error_response(
      504, "upstream_timeout",
      "no reply from service " + s.name + " within " + std::to_string(p.timeout.count()) + " ms");
}

asio::awaitable<http::response> proxy_service::handle_async(http::request& req, prepared& p,
                                                            std::int64_t wait_seconds) {
  if (submitter_ == nullptr)
    co_return http::error_response(501, "async_unavailable",
                                   "Prefer: respond-async is not available on this instance");
  p.request.async = true;
  p.request.deadline_ms = 0;
  std::shared_ptr<waiter> w;
  rpc::reply_address reply;
  if (wait_seconds > 0 && link_->ready()) {
    const auto wait =
        std::min<std::chrono::milliseconds>(std::chrono::seconds(wait_seconds), p.timeout);
    // A full table only costs the direct answer: the request is still taken, answered 202.
    w = waiters_.add(ids_.next().to_string(), p.request.body.size(), clock::now() + wait);
    if (w)
      reply = rpc::reply_address{link_->reply_to(), w->correlation_id};
  }
  // The submitter's publish goes to the service's exchange too: declared here when RabbitMQ is
  // up (when it is not, the durable request waits, and the next request declares it).
  if (link_->ready())
    co_await link_->ensure_topology(*p.service, p.started + p.timeout);
  std::optional<std::string> key;
  if (const auto k = req.header("Idempotency-Key"))
    key = std::string(*k);
  auto result = co_await submitter_->submit(p.request, reply, key);
  if (result.error || result.repeat) {
    waiters_.remove(w);
    if (result.error)
      co_return std::move(*result.error);
  } else if (w) {
    const auto outcome = co_await waiters_.wait(w, req.client.get());
    waiters_.remove(w);
    if (outcome == wait_outcome::replied)
      co_return from_reply(std::move(*w->reply));
  }
  nlohmann::json body = {{"id", result.id}, {"status", "pending"}};
  auto accepted = http::response::json(202, body.dump());
  accepted.with_header("Location", "/api/v1/requests/" + result.id);
  co_return accepted;
}

void add_proxy_routes(http::router& routes, proxy_service& proxy) {
  // A call through the proxy is a write: it reaches the service with the caller's request.
  http::route_options watched = http::needs(http::access::write, "service");
  watched.watch_client = true;
  watched.proxy_credentials = true;
  for (const char* method : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    routes.add(
        method, "/proxy/{service}/{path*}", "/proxy/{service}",
        [&proxy](http::request& req) { return proxy.handle(req); }, watched);
  }
}

}  // namespace sluice::proxy
