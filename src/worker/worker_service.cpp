#include "sluice/worker/worker_service.hpp"

#include <algorithm>
#include <set>

#include "sluice/services/service_json.hpp"
#include "sluice/services/target_url.hpp"

#include <spdlog/spdlog.h>

namespace sluice::worker {
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

target_origin origin_of(const services::http_url& url) {
  target_origin o;
  o.host = url.host;
  o.port = url.port;
  o.base_path = url.path;
  return o;
}

}  // namespace

std::shared_ptr<worker_service> worker_service::create(asio::any_io_executor executor,
                                                       std::shared_ptr<amqp::client> amqp,
                                                       services::service_registry& registry,
                                                       http::client& http,
                                                       metrics::registry& metrics,
                                                       worker_options options) {
  return std::shared_ptr<worker_service>(new worker_service(
      std::move(executor), std::move(amqp), registry, http, metrics, std::move(options)));
}

worker_service::worker_service(asio::any_io_executor executor, std::shared_ptr<amqp::client> amqp,
                               services::service_registry& registry, http::client& http,
                               metrics::registry& metrics, worker_options options)
    : context_(std::make_shared<worker_context>(executor, std::move(amqp), http, metrics)),
      registry_(registry),
      options_(std::move(options)),
      loops_(executor, "consumer") {
  context_->stop_grace = options_.stop_grace;
  context_->routes = options_.routes;
}

worker_service::~worker_service() = default;

void worker_service::set_response_sink(response_sink* sink) {
  context_->sink = sink;
}

std::vector<consumer_config> worker_service::configs_of(
    const std::shared_ptr<const services::service>& s, const services::service_defaults& d) {
  std::vector<consumer_config> out;
  if (!s)
    return out;
  for (const auto& f : s->flavours) {
    consumer_config c;
    c.service = s->name;
    c.flavour = f.name;
    c.queue = s->queue(f.name);
    c.prefetch = static_cast<std::uint16_t>(std::clamp<std::uint32_t>(s->concurrency, 1, 65'535));
    c.timeout = s->timeout;
    c.route = f.route;
    std::string why;
    if (s->batch) {
      // Batch mode calls the batch URL only.
      c.batch = batch_limits{s->batch->max_requests, s->batch->max_wait};
      if (const auto parsed = services::parse_http_url(s->batch->url, &why))
        c.batch_url = origin_of(*parsed);
      else
        c.target_error = "the batch URL " + s->batch->url + " is unusable: " + why;
    } else if (f.route && f.url.empty()) {
      c.has_url = false;
    } else {
      const std::string url = services::target_base_url(*s, f, d);
      if (const auto parsed = services::parse_http_url(url, &why))
        c.target = origin_of(*parsed);
      else
        c.target_error = "the target URL " + url + " of flavour " + f.name + " is unusable: " + why;
    }
    c.definition = s;
    out.push_back(std::move(c));
  }
  return out;
}

void worker_service::launch(consumer_config config, std::shared_ptr<flavour_consumer> predecessor) {
  auto key = std::pair{config.service, config.flavour};
  auto c = std::make_shared<flavour_consumer>(context_, std::move(config), std::move(predecessor));
  consumers_[std::move(key)] = c;
  loops_.spawn(c->run(), c);
}

void worker_service::reconcile(const std::string& service) {
  if (!started_ || stopping_)
    return;
  const auto wanted = configs_of(registry_.find(service), options_.defaults);
  std::set<std::string> flavours;
  for (const auto& c : wanted)
    flavours.insert(c.flavour);
  for (auto it = consumers_.begin(); it != consumers_.end();) {
    if (it->first.first == service && !flavours.contains(it->first.second)) {
      spdlog::info("worker: stopping consumer of queue={} (flavour or service removed)",
                   it->second->config().queue);
      it->second->stop();
      it = consumers_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& c : wanted) {
    const auto it = consumers_.find(std::pair{c.service, c.flavour});
    if (it == consumers_.end()) {
      launch(std::move(c), nullptr);
      continue;
    }
    if (it->second->config().same_as(c))
      continue;
    spdlog::info("worker: restarting consumer of queue={} (service changed)", c.queue);
    auto old = it->second;
    old->stop();
    launch(std::move(c), std::move(old));
  }
}

void worker_service::start() {
  if (started_)
    return;
  started_ = true;
  const std::weak_ptr<worker_service> weak = weak_from_this();
  registry_.on_change([weak](const std::string& name) {
    if (const auto self = weak.lock())
      self->reconcile(name);
  });
  context_->amqp->on_state_change([weak](amqp::client_state) {
    if (const auto self = weak.lock()) {
      for (const auto& [key, c] : self->consumers_)
        c->wake();
    }
  });
  for (const auto& s : registry_.all())
    reconcile(s->name);
  if (consumers_.empty())
    spdlog::info("worker: no services defined yet; consumers start as services are added");
}

asio::awaitable<void> worker_service::stop() {
  auto self = shared_from_this();
  stopping_ = true;
  for (const auto& [key, c] : consumers_)
    c->stop();
  consumers_.clear();
  // Every consumer gives its requests stop_grace, then cancels them: a few seconds beyond that
  // is plenty for the cancellations to land.
  if (!co_await loops_.wait(clock::now() + options_.stop_grace + std::chrono::seconds(5))) {
    spdlog::warn("worker: consumers did not stop in time; cancelling them");
    loops_.cancel_all();
    co_await loops_.wait(clock::now() + std::chrono::seconds(5));
  }
}

std::vector<consumer_status> worker_service::status() const {
  std::vector<consumer_status> out;
  out.reserve(consumers_.size());
  for (const auto& [key, c] : consumers_)
    out.push_back(c->status());
  std::sort(out.begin(), out.end(),
            [](const consumer_status& a, const consumer_status& b) { return a.queue < b.queue; });
  return out;
}

bool worker_service::all_consuming() const {
  return std::all_of(consumers_.begin(), consumers_.end(),
                     [](const auto& entry) { return entry.second->status().consuming; });
}

}  // namespace sluice::worker
