#include "sluice/app/daemon.hpp"

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "sluice/api/health_routes.hpp"
#include "sluice/api/readiness.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace sluice::app {
namespace asio = boost::asio;

namespace {

void configure_logging(const std::string& level) {
  // One line per event on stderr (journald and docker collect it); ISO time with milliseconds.
  auto logger = spdlog::stderr_logger_mt("sluice");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

http::server_options api_server_options(const config::settings& s, std::string name) {
  http::server_options o;
  o.name = std::move(name);
  o.max_body_bytes = s.http_max_body_bytes;
  o.max_header_bytes = s.http_max_header_bytes;
  o.read_timeout = s.http_read_timeout;
  o.idle_timeout = s.http_idle_timeout;
  o.max_connections = s.http_max_connections;
  return o;
}

api::check_result check_buffer_dir(const std::string& dir) {
  if (::access(dir.c_str(), W_OK) != 0) {
    return {false, dir + " is not writable: " + std::strerror(errno)};
  }
  return {true, dir + " writable"};
}

}  // namespace

int run_daemon(const config::settings& settings) {
  configure_logging(settings.log_level);
  asio::io_context io(1);

  metrics::registry metrics;
  metrics.add_gauge("sluice_build_info", "Build information; the value is always 1.", {"version"})
      .with({SLUICE_VERSION})
      .set(1);

  api::readiness ready;
  ready.add("buffer", [dir = settings.file_buffer_dir]() -> asio::awaitable<api::check_result> {
    co_return check_buffer_dir(dir);
  });

  http::router routes;
  api::add_health_routes(routes, ready, metrics);
  http::server api_server(io.get_executor(), api_server_options(settings, "api"), routes, metrics);

  http::router metrics_routes;
  api::add_health_routes(metrics_routes, ready, metrics);
  std::unique_ptr<http::server> metrics_server;

  try {
    const auto port = api_server.listen(settings.http_addr.host, settings.http_addr.port);
    spdlog::info("http[api]: listening on {}:{}", settings.http_addr.host, port);
    if (!settings.metrics_addr.host.empty()) {
      metrics_server = std::make_unique<http::server>(
          io.get_executor(), api_server_options(settings, "metrics"), metrics_routes, metrics);
      const auto mport =
          metrics_server->listen(settings.metrics_addr.host, settings.metrics_addr.port);
      spdlog::info("http[metrics]: listening on {}:{}", settings.metrics_addr.host, mport);
    }
  } catch (const std::system_error& e) {
    spdlog::critical("cannot listen: {}", e.what());
    return 1;
  }
  api_server.start();
  if (metrics_server)
    metrics_server->start();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec)
      return;
    spdlog::info("shutdown: signal {} received, draining for up to {} ms", signo,
                 settings.shutdown_grace.count());
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          if (metrics_server)
            co_await metrics_server->shutdown(std::chrono::milliseconds(0));
          co_await api_server.shutdown(settings.shutdown_grace);
          spdlog::info("shutdown: complete");
          io.stop();
        },
        asio::detached);
  });

  spdlog::info("sluice {} started (pid {})", SLUICE_VERSION, ::getpid());
  io.run();
  return 0;
}

}  // namespace sluice::app
