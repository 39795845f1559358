#include "sluice/services/service_catalog.hpp"

#include <algorithm>

#include "sluice/services/service_json.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

namespace sluice::services {
namespace asio = boost::asio;

namespace {

store::pool_options catalog_pool(store::pool_options o) {
  o.max_connections = 2;
  return o;
}

}  // namespace

service_catalog::service_catalog(asio::any_io_executor executor, metrics::registry& metrics,
                                 catalog_options options)
    : executor_(executor),
      options_(std::move(options)),
      pool_(executor, catalog_pool(options_.pool)),
      store_(pool_, options_.defaults),
      follower_(executor, registry_, options_.defaults, options_.follower, metrics),
      sighup_(executor),
      schedule_valid_(metrics.add_gauge(
          "sluice_schedule_valid_seconds",
          "Seconds until the service's traffic schedule expires (negative once expired); only "
          "services with a schedule.",
          {"service"})) {
  if (!options_.services_file.empty()) {
    file_ = std::make_unique<services_file>(executor, options_.services_file, options_.defaults,
                                            registry_, metrics);
  }
  metrics.on_collect([this] { refresh_schedule_gauges(); });
}

service_catalog::~service_catalog() {
  follower_.stop();
  if (file_)
    file_->stop();
  pool_.shutdown();
}

void service_catalog::load() {
  registry_.replace_source(service_source::env, options_.env_services);
  for (const auto& s : options_.env_services)
    spdlog::info("services: {} defined by the environment", s.name);
  if (file_)
    file_->load_or_throw();
}

void service_catalog::start() {
  asio::co_spawn(executor_, follower_.run(), asio::detached);
  if (file_) {
    file_watching_ = true;
    asio::co_spawn(executor_, file_->watch(), asio::detached);
  }
  // Installed even without SERVICES_FILE: SIGHUP's default action would end the process.
  sighup_.add(SIGHUP);
  arm_sighup();
}

void service_catalog::arm_sighup() {
  sighup_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec || stopped_)
      return;
    if (file_) {
      file_->reload("SIGHUP");
    } else {
      spdlog::info("services: SIGHUP: no SERVICES_FILE to reload");
    }
    arm_sighup();
  });
}

void service_catalog::schema_ready() {
  follower_.poke();
}

asio::awaitable<void> service_catalog::stop() {
  if (stopped_)
    co_return;
  stopped_ = true;
  boost::system::error_code ignored;
  sighup_.cancel(ignored);
  if (file_) {
    file_->stop();
    if (file_watching_)
      co_await file_->wait_stopped();
  }
  follower_.stop();
  co_await follower_.wait_stopped();
  pool_.shutdown();
}

void service_catalog::refresh_schedule_gauges() {
  const auto now = std::chrono::system_clock::now();
  std::vector<std::string> current;
  for (const auto& s : registry_.all()) {
    const auto seconds = schedule_valid_seconds(*s, now);
    if (!seconds)
      continue;
    schedule_valid_.with({s->name}).set(*seconds);
    current.push_back(s->name);
  }
  // registry_.all() is sorted by name, and so is gauged_.
  for (const auto& name : gauged_) {
    if (!std::binary_search(current.begin(), current.end(), name))
      schedule_valid_.remove({name});
  }
  gauged_ = std::move(current);
}

}  // namespace sluice::services
