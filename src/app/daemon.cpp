#include "sluice/app/daemon.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <unistd.h>

#include "sluice/amqp/settings.hpp"
#include "sluice/api/api_document_routes.hpp"
#include "sluice/api/directory_watch.hpp"
#include "sluice/api/dlq_routes.hpp"
#include "sluice/api/health_routes.hpp"
#include "sluice/api/ingest_routes.hpp"
#include "sluice/api/postgres_watch.hpp"
#include "sluice/api/push_routes.hpp"
#include "sluice/api/query_routes.hpp"
#include "sluice/api/queue_routes.hpp"
#include "sluice/api/readiness.hpp"
#include "sluice/api/readiness_checks.hpp"
#include "sluice/api/route_resolve_routes.hpp"
#include "sluice/api/route_routes.hpp"
#include "sluice/api/service_routes.hpp"
#include "sluice/api/subscription_routes.hpp"
#include "sluice/auth/authenticator.hpp"
#include "sluice/buffer/buffer_log.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/delivery/attempt_reader.hpp"
#include "sluice/delivery/attempt_recorder.hpp"
#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/delivery/delivery_service.hpp"
#include "sluice/delivery/dlq_job_runner.hpp"
#include "sluice/delivery/dlq_job_store.hpp"
#include "sluice/delivery/retry_scheduler.hpp"
#include "sluice/delivery/retry_store.hpp"
#include "sluice/delivery/subscription_catalog.hpp"
#include "sluice/http/client.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/proxy/proxy_service.hpp"
#include "sluice/push/push_service.hpp"
#include "sluice/relay/queue_modes.hpp"
#include "sluice/relay/relay_service.hpp"
#include "sluice/requests/async_request_submitter.hpp"
#include "sluice/requests/request_routes.hpp"
#include "sluice/requests/response_store.hpp"
#include "sluice/routing/route_event_publisher.hpp"
#include "sluice/routing/route_follower.hpp"
#include "sluice/routing/route_resolver.hpp"
#include "sluice/routing/route_store.hpp"
#include "sluice/services/env_services.hpp"
#include "sluice/services/service_catalog.hpp"
#include "sluice/store/message_store.hpp"
#include "sluice/store/pg_pool.hpp"
#include "sluice/store/pool_metrics.hpp"
#include "sluice/worker/worker_service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace sluice::app {
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

// Lines queued for the logging thread; beyond this a flood overwrites the oldest queued line.
constexpr std::size_t log_queue_lines = 8192;

void configure_logging(const std::string& level) {
  // One line per event on stderr (journald and docker collect it); ISO time with milliseconds.
  // Written by spdlog's own thread: stderr may be a pipe to a slow reader, and a write that
  // blocks must not block the event loop. At the queue's bound the oldest queued line is
  // dropped rather than the loop made to wait (counted in sluice_log_lines_dropped_total).
  spdlog::init_thread_pool(log_queue_lines, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>(
      "sluice", sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Every way out of run_daemon writes what is still queued.
struct flush_logs_at_exit {
  flush_logs_at_exit() = default;
  flush_logs_at_exit(const flush_logs_at_exit&) = delete;
  flush_logs_at_exit& operator=(const flush_logs_at_exit&) = delete;
  ~flush_logs_at_exit() { spdlog::shutdown(); }
};

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

buffer::buffer_options log_options(const config::settings& s, bool qos0) {
  buffer::buffer_options o;
  switch (s.file_buffer_fsync) {
    case config::fsync_policy::always:
      o.fsync = buffer::fsync_policy::always;
      break;
    case config::fsync_policy::interval:
      o.fsync = buffer::fsync_policy::interval;
      break;
    case config::fsync_policy::never:
      o.fsync = buffer::fsync_policy::never;
      break;
  }
  // QoS0 is answered once written: its promise is "flushed later", not "on disk now".
  if (qos0 && o.fsync == buffer::fsync_policy::always)
    o.fsync = buffer::fsync_policy::interval;
  o.flush_interval = s.file_buffer_flush;
  o.segment_bytes = s.file_buffer_segment_bytes;
  o.max_total_bytes = s.file_buffer_max_bytes;
  o.max_failed_bytes = s.file_buffer_failed_max_bytes;
  o.replay_batch = s.file_buffer_max_batch;
  return o;
}

std::unique_ptr<buffer::buffer_log> open_log(const config::settings& s, const char* name,
                                             asio::io_context& io) {
  std::error_code ec;
  const auto dir = std::filesystem::path(s.file_buffer_dir) / name;
  auto log = buffer::buffer_log::open(dir, log_options(s, std::string(name) == "qos0"),
                                      io.get_executor(), ec);
  if (!log) {
    spdlog::critical("buffer: cannot open {}: {} (FILE_BUFFER_DIR must be a writable directory)",
                     dir.string(), ec.message());
    return nullptr;
  }
  return log;
}

// Null when RABBITMQ_URL is empty. Throws std::invalid_argument for a URL the amqp module
// cannot use (the config module checks only the scheme; the full parse is the amqp module's).
std::shared_ptr<relay::relay_service> make_relay(const config::settings& s, asio::io_context& io,
                                                 store::pg_pool& pool, relay::queue_modes& modes,
                                                 metrics::registry& metrics,
                                                 const push::push_service& pushes) {
  if (s.rabbitmq_url.empty())
    return nullptr;
  amqp::settings as;
  as.url = s.rabbitmq_url;
  as.ca_file = s.rabbitmq_ca_file;
  as.heartbeat = s.rabbitmq_heartbeat;
  as.confirm_window = s.rabbitmq_confirm_window;
  as.confirm_window_bytes = s.rabbitmq_confirm_window_bytes;
  as.queues = s.rabbitmq_queue_type == config::queue_type::quorum ? amqp::queue_type::quorum
                                                                  : amqp::queue_type::classic;
  std::string error;
  auto client = amqp::make_client_options(as, &error);
  if (!client)
    throw std::invalid_argument(error);
  relay::relay_options o;
  o.client = std::move(*client);
  o.queue_type = as.queues;
  o.queue_max = s.relay_queue_max;
  o.queue_max_bytes = s.relay_queue_max_bytes;
  o.sweep_interval = s.relay_sweep_interval;
  o.claim.batch = s.relay_sweep_batch;
  o.claim.grace = s.relay_sweep_grace;
  o.claim.lease = s.relay_claim_lease;
  o.statement_timeout = s.db_statement_timeout;
  o.marker.statement_timeout = s.db_statement_timeout;
  o.schema_ready = [&pushes] { return pushes.gate().schema_ready(); };
  return relay::relay_service::create(io.get_executor(), pool, modes, metrics, std::move(o));
}

}  // namespace

int run_daemon(const config::settings& settings) {
  configure_logging(settings.log_level);
  const flush_logs_at_exit flush_logs;
  asio::io_context io(1);

  metrics::registry metrics;
  auto& log_dropped = metrics
                          .add_counter("sluice_log_lines_dropped_total",
                                       "Log lines dropped because the logging thread fell behind.")
                          .get();
  metrics.on_collect([&log_dropped] {
    // The pool counts; the counter follows it.
    if (auto pool = spdlog::thread_pool())
      log_dropped.inc(static_cast<double>(pool->overrun_counter()) - log_dropped.value());
  });
  metrics.add_gauge("sluice_build_info", "Build information; the value is always 1.", {"version"})
      .with({SLUICE_VERSION})
      .set(1);

  auto failover_log = open_log(settings, "failover", io);
  auto qos0_log = failover_log ? open_log(settings, "qos0", io) : nullptr;
  if (!failover_log || !qos0_log)
    return 1;

  store::pool_options pool_opts;
  pool_opts.connection.conninfo = settings.database_url;
  pool_opts.connection.connect_timeout = settings.db_connect_timeout;
  pool_opts.connection.statement_timeout = settings.db_statement_timeout;
  pool_opts.max_connections = settings.db_pool_max;
  store::pg_pool pool(io.get_executor(), pool_opts);
  store::message_store messages(pool);

  // Probes get a pool of their own, so a probe never takes a connection a push is waiting for
  // (readiness, and the push path's "slow statement or dead server?" question).
  // One connection, pinged every second; a reconnect backoff longer than that would only delay
  // noticing that PostgreSQL is back.
  store::pool_options probe_pool_opts = pool_opts;
  probe_pool_opts.max_connections = 1;
  probe_pool_opts.reconnect_backoff_max = std::chrono::seconds(1);
  store::pg_pool probe_pool(io.get_executor(), probe_pool_opts);

  push::push_service_options push_opts;
  push_opts.db_alive = [&probe_pool]() -> asio::awaitable<bool> {
    co_return !co_await probe_pool.ping(clock::now() + std::chrono::seconds(1));
  };
  push_opts.batcher.max_batch_rows = settings.push_batch_max_rows;
  // At most 4 round trips at once even with a larger pool: beyond that PostgreSQL's backends
  // only queue for the cores (BENCHMARKS.md); the batcher starts a second one only for large
  // batches or a stall (push_batcher.hpp).
  push_opts.batcher.max_inflight_batches = std::min<std::size_t>(settings.db_pool_max, 4);
  push_opts.batcher.max_queued_items = settings.push_queue_max_items;
  push_opts.batcher.max_queued_bytes = settings.push_queue_max_bytes;
  push_opts.batcher.deadline = settings.db_statement_timeout;
  push_opts.replay_batch = settings.file_buffer_max_batch;
  push_opts.deadline = settings.db_statement_timeout;
  push_opts.max_queue_labels = settings.metrics_max_queue_labels;
  push::buffer_log_records failover_records(*failover_log);
  push::buffer_log_records qos0_records(*qos0_log);
  push::push_service pushes(io.get_executor(), pool, messages, failover_records, qos0_records,
                            metrics, push_opts);

  // The relay and the queue settings API get connections of their own, so marking and sweeping
  // never take a connection the push path is waiting for. Three: the marker, the sweeper, and
  // the periodic backlog and queue-mode reads (a backlog count can take a while after an outage).
  store::pool_options relay_pool_opts = pool_opts;
  relay_pool_opts.max_connections = 3;
  store::pg_pool relay_pool(io.get_executor(), relay_pool_opts);

  relay::queue_modes queue_modes(relay_pool,
                                 settings.default_delivery_mode == config::delivery_mode::broadcast
                                     ? relay::queue_mode::broadcast
                                     : relay::queue_mode::queue);
  std::shared_ptr<relay::relay_service> rabbitmq_relay;
  try {
    rabbitmq_relay = make_relay(settings, io, relay_pool, queue_modes, metrics, pushes);
  } catch (const std::invalid_argument& e) {
    spdlog::critical("invalid settings: {}", e.what());
    return 2;
  }
  if (rabbitmq_relay) {
    pushes.set_sink(rabbitmq_relay.get());
    pushes.on_schema_ready([relay = rabbitmq_relay.get()] { relay->schema_ready(); });
  } else {
    spdlog::warn(
        "relay: RABBITMQ_URL is empty: messages are stored in PostgreSQL but not published to "
        "RabbitMQ");
  }

  // Services (request proxy): the layered registry (SERVICES_FILE > API > environment), its
  // store, the follower of sluice_services (a LISTEN connection of its own, in the background:
  // PostgreSQL being down delays nothing) and SIGHUP. The proxy and the workers take
  // service_catalog.registry().
  services::catalog_options catalog_opts;
  catalog_opts.pool = pool_opts;
  catalog_opts.follower.connection = pool_opts.connection;
  // Told apart from the pools' sessions in pg_stat_activity.
  catalog_opts.follower.connection.application_name = "sluice-services-follower";
  catalog_opts.follower.statement_timeout = settings.db_statement_timeout;
  catalog_opts.statement_timeout = settings.db_statement_timeout;
  catalog_opts.services_file = settings.services_file;
  try {
    catalog_opts.defaults = services::defaults_from_settings(settings);
    catalog_opts.env_services = services::services_from_settings(settings);
  } catch (const std::exception& e) {
    spdlog::critical("invalid settings: {}", e.what());
    return 2;
  }
  services::service_catalog service_catalog(io.get_executor(), metrics, std::move(catalog_opts));
  try {
    service_catalog.load();
  } catch (const std::runtime_error& e) {
    spdlog::critical("{}", e.what());
    return 2;
  }
  service_catalog.start();

  // Delivery subscriptions: their store, the follower of sluice_subscriptions (a LISTEN
  // connection of its own, like the services') and the registry the delivery engine reads.
  delivery::subscription_catalog_options subscription_opts;
  subscription_opts.pool = pool_opts;
  subscription_opts.follower.connection = pool_opts.connection;
  subscription_opts.follower.connection.application_name = "sluice-subscriptions-follower";
  subscription_opts.follower.statement_timeout = settings.db_statement_timeout;
  subscription_opts.statement_timeout = settings.db_statement_timeout;
  subscription_opts.default_concurrency = settings.concurrency_per_queue;
  delivery::subscription_catalog subscription_catalog(io.get_executor(), metrics,
                                                      std::move(subscription_opts));
  subscription_catalog.start();

  // ---- route registry, resolve side (issue #11): route_resolver (the cache, one lookup per
  // cold key) on two connections of its own, so a resolve never waits for a push's connection
  // and a burst of cold keys never takes one; the follower of sluice_routes (a LISTEN
  // connection of its own) that applies every change to the cache by version. The proxy's and
  // the delivery workers take &route_resolver as their routing::route_lookup*.
  store::pool_options routes_pool_opts = pool_opts;
  routes_pool_opts.max_connections = 2;
  store::pg_pool routes_pool(io.get_executor(), routes_pool_opts);
  routing::route_store route_reads(routes_pool);
  routing::route_resolver_options resolver_opts;
  resolver_opts.cache = {settings.route_positive_ttl, settings.route_negative_ttl,
                         settings.route_cache_max_entries, settings.route_stale_max};
  resolver_opts.lookup_timeout = settings.db_statement_timeout;
  routing::route_resolver route_resolver(
      io.get_executor(),
      [&route_reads](const routing::route_key& key, clock::time_point deadline) {
        return route_reads.lookup(key, deadline);
      },
      resolver_opts, metrics);
  routing::route_follower_options route_follower_opts;
  route_follower_opts.listen.connection = pool_opts.connection;
  route_follower_opts.listen.connection.application_name = "sluice-routes-follower";
  route_follower_opts.listen.statement_timeout = settings.db_statement_timeout;
  routing::route_follower route_follower(io.get_executor(), route_resolver, route_follower_opts,
                                         metrics);
  asio::co_spawn(io, route_follower.run(), asio::detached);
  store::export_pool_metrics(metrics, pool);
  // ---- end route registry

  // push_service has one schema-ready hook: the relay's (set above) and the followers'.
  pushes.on_schema_ready(
      [relay = rabbitmq_relay.get(), &service_catalog, &subscription_catalog, &route_follower] {
        if (relay)
          relay->schema_ready();
        service_catalog.schema_ready();
        subscription_catalog.schema_ready();
        route_follower.poke();
      });

  // Async proxy requests (Prefer: respond-async): made durable through the push path, their
  // outcomes stored by the workers, polled at GET /api/v1/requests/{id}. Two connections of
  // their own, so polling clients and storing workers never take one a push is waiting for.
  store::pool_options requests_pool_opts = pool_opts;
  requests_pool_opts.max_connections = 2;
  store::pg_pool requests_pool(io.get_executor(), requests_pool_opts);
  requests::async_request_submitter async_submitter(pushes, service_catalog.registry());
  requests::response_store async_responses(requests_pool, settings.db_statement_timeout);
  requests::request_status_reader request_status(requests_pool, settings.db_statement_timeout);

  // Workers role: a consumer per service flavour queue on a RabbitMQ connection of its own,
  // forwarding with the upstream HTTP client (src/worker).
  std::shared_ptr<amqp::client> worker_amqp;
  std::unique_ptr<http::client> upstream;
  std::shared_ptr<worker::worker_service> workers;
  if (settings.role_workers && !settings.rabbitmq_url.empty()) {
    amqp::settings as;
    as.url = settings.rabbitmq_url;
    as.ca_file = settings.rabbitmq_ca_file;
    as.heartbeat = settings.rabbitmq_heartbeat;
    std::string error;
    auto client_opts = amqp::make_client_options(as, &error);
    if (!client_opts) {
      spdlog::critical("invalid settings: {}", error);
      return 2;
    }
    // Replies go out on the consuming channels; the publisher is the retry scheduler's, which
    // publishes due deliveries again on this connection.
    client_opts->enable_publisher = true;
    worker_amqp = amqp::client::create(io.get_executor(), std::move(*client_opts));
    http::client_options ho;
    ho.max_connections_per_host = settings.upstream_max_connections_per_host;
    ho.connect_timeout = settings.upstream_connect_timeout;
    ho.idle_timeout = settings.upstream_idle_timeout;
    ho.max_response_bytes = settings.upstream_max_response_bytes;
    upstream = std::make_unique<http::client>(io.get_executor(), ho);
    worker::worker_options wo;
    wo.defaults = service_catalog.defaults();
    wo.stop_grace = settings.shutdown_grace;
    wo.routes = &route_resolver;
    workers = worker::worker_service::create(io.get_executor(), worker_amqp,
                                             service_catalog.registry(), *upstream, metrics, wo);
    workers->set_response_sink(&async_responses);
  }

  // Dead letters, re-drives and delivery attempt records (src/delivery). The API's reads and
  // writes get two connections of their own; the workers role's background loops (the
  // attempt recorder's group commits, the re-drive job runner's batches) two more, so a long
  // job batch never holds up an API call and neither takes a connection a push is waiting for.
  store::pool_options dlq_pool_opts = pool_opts;
  dlq_pool_opts.max_connections = 2;
  store::pg_pool dlq_pool(io.get_executor(), dlq_pool_opts);
  store::pg_pool delivery_background_pool(io.get_executor(), dlq_pool_opts);
  delivery::dead_letter_store dead_letters(dlq_pool);
  delivery::dlq_job_store dlq_jobs(dlq_pool);
  delivery::attempt_reader attempt_reads(dlq_pool);
  delivery::dead_letter_store background_dead_letters(delivery_background_pool);
  delivery::dlq_job_store background_dlq_jobs(delivery_background_pool);
  // The delivery engine records its attempts with attempt_recorder.get() (null without the
  // workers role).
  std::unique_ptr<delivery::attempt_recorder> attempt_recorder;
  std::unique_ptr<delivery::dlq_job_runner> dlq_runner;
  // Set by the delivery engine: wakes its retry scheduler, so that re-drives go out at once
  // rather than at its next poll.
  std::function<void()> wake_retry_scheduler;
  if (settings.role_workers) {
    delivery::attempt_recorder_options ro;
    ro.queue_max = settings.delivery_attempts_queue_max;
    ro.retention = settings.delivery_attempts_retention;
    ro.statement_timeout = settings.db_statement_timeout;
    attempt_recorder =
        std::make_unique<delivery::attempt_recorder>(delivery_background_pool, metrics, ro);
    delivery::dlq_job_runner_options jo;
    jo.statement_timeout = settings.db_statement_timeout;
    dlq_runner = std::make_unique<delivery::dlq_job_runner>(background_dlq_jobs,
                                                            background_dead_letters, metrics, jo);
    dlq_runner->on_redriven([&wake_retry_scheduler](std::int64_t) {
      if (wake_retry_scheduler)
        wake_retry_scheduler();
    });
  }
  // The background loops end after stop(); the shutdown waits for both.
  int delivery_loops_running = 0;
  async_event delivery_loops_ended;

  // ---- delivery engine (issue #10): subscriptions delivered to HTTP endpoints, on the workers'
  // AMQP connection and upstream HTTP client, with a pool of its own for the retry and
  // dead-letter writes (a delivery waiting on PostgreSQL never takes a push's or the API's
  // connection), and the retry scheduler that publishes due retries again.
  store::pool_options delivery_pool_opts = pool_opts;
  delivery_pool_opts.max_connections = 3;
  store::pg_pool delivery_pool(io.get_executor(), delivery_pool_opts);
  delivery::retry_store delivery_retries(delivery_pool);
  delivery::dead_letter_store delivery_dead_letters(delivery_pool);
  // Its own store instance on the same pool: retry_store keeps the last error text.
  delivery::retry_store scheduler_retries(delivery_pool);
  std::shared_ptr<delivery::delivery_service> deliveries;
  std::shared_ptr<delivery::retry_scheduler> retry_scheduler;
  if (workers) {
    delivery::retry_scheduler_options rso;
    rso.poll = settings.delivery_retry_poll;
    rso.statement_timeout = settings.db_statement_timeout;
    retry_scheduler = delivery::retry_scheduler::create(
        io.get_executor(), rso, scheduler_retries, worker_amqp, queue_modes, metrics,
        delivery::ordered_by(subscription_catalog.registry()));
    wake_retry_scheduler = [s = retry_scheduler.get()] {
      s->expect(std::chrono::system_clock::now());
    };
    delivery::delivery_stores ds;
    ds.retries = &delivery_retries;
    ds.dead_letters = &delivery_dead_letters;
    ds.subscriptions = &subscription_catalog.store();
    ds.recorder = attempt_recorder.get();
    ds.on_parked = [s = retry_scheduler.get()](std::chrono::system_clock::time_point due) {
      s->expect(due);
    };
    delivery::delivery_service_options dso;
    dso.delivery.stop_grace = settings.shutdown_grace;
    dso.delivery.retry_after_max = settings.delivery_retry_after_max;
    dso.delivery.store_timeout = settings.db_statement_timeout;
    dso.delivery.queue_type = settings.rabbitmq_queue_type == config::queue_type::quorum
                                  ? amqp::queue_type::quorum
                                  : amqp::queue_type::classic;
    dso.breaker.failure_threshold = settings.delivery_breaker_failures;
    dso.breaker.open_initial = settings.delivery_breaker_open;
    dso.routes = &route_resolver;
    deliveries = delivery::delivery_service::create(io.get_executor(), worker_amqp,
                                                    subscription_catalog.registry(), queue_modes,
                                                    *upstream, metrics, std::move(ds), dso);
  }
  // ---- end delivery engine

  // Each ping bounded by 1 s; probes read the last answer, so a hung PostgreSQL delays none.
  api::postgres_watch postgres_watch(io.get_executor(), probe_pool,
                                     {std::chrono::seconds(1), std::chrono::seconds(1)});
  // access() blocks as long as the file system likes: a thread of the watch makes it.
  api::directory_watch buffer_dirs(io.get_executor(), {failover_log->dir(), qos0_log->dir()},
                                   std::chrono::seconds(1));

  api::readiness ready(metrics);
  ready.add("postgres", [&] {
    return api::postgres_check(postgres_watch.last(), pushes.gate().schema_ready());
  });
  // Room for the largest request, or a tenth of the bound if that is less: a small bound
  // still takes pushes up to its nearly-full mark.
  const api::buffer_limits buffer_limits{
      settings.file_buffer_max_bytes,
      std::min<std::uint64_t>(settings.http_max_body_bytes, settings.file_buffer_max_bytes / 10),
      std::chrono::seconds(5)};
  ready.add("buffer", [&] {
    return api::buffer_check(buffer_dirs.last(), pushes.status(), buffer_limits, clock::now());
  });

  if (rabbitmq_relay) {
    ready.add("rabbitmq", [&] {
      const auto h = rabbitmq_relay->health();
      return api::check_result{h.ok, h.detail, std::nullopt};
    });
  }

  ready.add_with_fields("registry", [&] {
    return api::registry_check(route_follower.status(), route_resolver.cache().size(),
                               std::chrono::system_clock::now(),
                               2 * std::chrono::duration_cast<std::chrono::seconds>(
                                       route_follower_opts.listen.full_reload_interval));
  });
  ready.add_with_fields("database", [&] {
    return api::database_check(pool.stats(), pool.options().max_connections, pool.healthy(),
                               postgres_watch.last());
  });
  if (workers)
    ready.add("workers", [&] { return api::workers_check(workers->status()); });
  if (deliveries)
    ready.add("deliveries", [&] { return api::deliveries_check(deliveries->status()); });

  // Bearer tokens (AUTH_TOKEN, AUTH_TOKENS_FILE, AUTH_JWT_*): none configured = all open.
  std::optional<auth::authenticator> authenticator;
  try {
    authenticator.emplace(settings, metrics);
  } catch (const std::runtime_error& e) {
    spdlog::critical("{}", e.what());
    return 2;
  }
  authenticator->watch_sighup(io.get_executor());
  const auto with_auth = [&authenticator](http::server_options o) {
    if (authenticator->enabled()) {
      o.authorize = [&authenticator](http::request& req, const http::route_options& route) {
        return authenticator->authorize(req, route);
      };
    }
    return o;
  };
  const http::access metrics_access =
      settings.metrics_auth ? http::access::read : http::access::open;

  http::router routes;
  api::add_health_routes(routes, ready, metrics, metrics_access);
  api::add_push_routes(routes, pushes, {settings.push_max_items, settings.push_max_payload_bytes});
  api::add_ingest_routes(routes, pushes,
                         {.max_body_bytes = settings.ingest_max_bytes,
                          .max_row_bytes = settings.push_max_payload_bytes});
  api::add_queue_routes(routes, queue_modes, &subscription_catalog);
  api::add_service_routes(routes, service_catalog);
  api::add_route_resolve_routes(routes, route_resolver);
  api::add_subscription_routes(
      routes, subscription_catalog, queue_modes,
      [&deliveries](const std::string& queue,
                    const std::string& name) -> std::optional<nlohmann::json> {
        if (!deliveries)
          return std::nullopt;
        return deliveries->status_of(queue, name);
      });
  api::add_dlq_routes(routes, api::dlq_api{.letters = dead_letters,
                                           .jobs = dlq_jobs,
                                           .attempts = attempt_reads,
                                           .runner = dlq_runner.get(),
                                           .on_redriven =
                                               [&wake_retry_scheduler] {
                                                 if (wake_retry_scheduler)
                                                   wake_retry_scheduler();
                                               },
                                           .statement_timeout = settings.db_statement_timeout});
  // The query API reads on connections of its own (at most 4: beyond that its pages only
  // queue for PostgreSQL's cores), so a burst of reads never takes a push's connection.
  store::pool_options query_pool_opts = pool_opts;
  query_pool_opts.max_connections = std::min<std::size_t>(settings.db_pool_max, 4);
  store::pg_pool query_pool(io.get_executor(), query_pool_opts);
  api::add_query_routes(routes, query_pool, {settings.default_page_size, settings.max_page_size},
                        settings.db_statement_timeout);
  requests::add_request_routes(routes, request_status, [&pushes] {
    return pushes.status().failover.stats.pending_records > 0;
  });

  // ---- route registry (issue #11): the store on the main pool, its API, and the publisher of
  // its change events to the sluice.route-events exchange on the relay's AMQP connection, with
  // a pool of its own (a batch holds its connection while RabbitMQ confirms). Every instance
  // with RabbitMQ runs a publisher; the advisory lock of each batch lets one publish at a time.
  routing::route_store route_registry(pool);
  store::pool_options route_events_pool_opts = pool_opts;
  route_events_pool_opts.max_connections = 1;
  store::pg_pool route_events_pool(io.get_executor(), route_events_pool_opts);
  std::shared_ptr<routing::route_event_publisher> route_events;
  if (rabbitmq_relay) {
    routing::route_event_publisher_options reo;
    reo.statement_timeout = settings.db_statement_timeout;
    route_events = routing::route_event_publisher::create(
        io.get_executor(), rabbitmq_relay->client(), route_events_pool, metrics, reo);
    route_events->start();
  }
  api::add_route_routes(routes,
                        api::route_api{.store = route_registry,
                                       .statement_timeout = settings.db_statement_timeout,
                                       .on_change = [&route_events](const routing::change_result&) {
                                         if (route_events)
                                           route_events->wake();
                                       }});
  // ---- end route registry

  // Request proxy, ingress role: on the relay's AMQP connection, with a channel of its own.
  std::unique_ptr<proxy::proxy_service> proxy_ingress;
  if (settings.role_ingress && rabbitmq_relay) {
    proxy::proxy_options po;
    po.limits.max_pending = settings.proxy_max_pending;
    po.limits.max_bytes = settings.proxy_max_inflight_bytes;
    po.link.publisher.confirm_window = settings.rabbitmq_confirm_window;
    po.link.publisher.confirm_window_bytes = settings.rabbitmq_confirm_window_bytes;
    // A full confirm window is the only wait left once the link is up; bounded short, since
    // the client's answer is a 503 and never a hang.
    po.link.publisher.publish_timeout = std::chrono::seconds(1);
    proxy_ingress =
        std::make_unique<proxy::proxy_service>(io.get_executor(), service_catalog.registry(),
                                               rabbitmq_relay->client(), metrics, std::move(po));
    proxy_ingress->set_async_submitter(&async_submitter);
    proxy::add_proxy_routes(routes, *proxy_ingress);
  }
  api::add_api_document_routes(routes);
  // One line, for the API document's test (every route documented, every documented one routed).
  spdlog::debug("http[api]: routes {}", api::route_table_json(routes));
  // HTTPS (SLUICE_TLS_CERT + SLUICE_TLS_KEY): one identity for both listeners, re-read on
  // SIGHUP. The metrics listener uses it too: it serves /health* and /ready as well as
  // /metrics, and a scrape over a network deserves the same protection (Prometheus scrapes
  // https with scheme: https and tls_config.ca_file).
  std::shared_ptr<http::tls_identity> tls;
  if (!settings.tls_cert_file.empty()) {
    try {
      tls = std::make_shared<http::tls_identity>(settings.tls_cert_file, settings.tls_key_file);
    } catch (const http::tls_identity::load_error& e) {
      spdlog::critical("invalid settings: {}", e.what());
      return 2;
    }
    spdlog::info("tls: HTTPS with {}", tls->description());
  }
  // Several signal_sets may wait for SIGHUP (the services' catalog has its own): each gets it.
  asio::signal_set tls_reload(io, SIGHUP);
  std::function<void()> await_tls_reload = [&] {
    tls_reload.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec)
        return;
      tls->reload();
      await_tls_reload();
    });
  };
  if (tls)
    await_tls_reload();
  auto server_options = [&](std::string name) {
    auto o = with_auth(api_server_options(settings, std::move(name)));
    o.tls = tls;
    return o;
  };
  http::server api_server(io.get_executor(), server_options("api"), routes, metrics);

  http::router metrics_routes;
  api::add_health_routes(metrics_routes, ready, metrics, metrics_access);
  std::unique_ptr<http::server> metrics_server;

  // Set once the start-up below has run; a signal that arrives earlier waits for it, so the
  // shutdown never overtakes a half-started service.
  bool started = false;
  async_event started_event;

  // Before the listeners open: a SIGTERM as soon as the port answers must drain, not kill.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec)
      return;
    spdlog::info("shutdown: signal {} received, draining for up to {} ms", signo,
                 settings.shutdown_grace.count());
    // A second signal (Ctrl-C again) cuts the wait for requests in flight short; the rest of
    // the shutdown (buffers closed, confirms awaited) still runs, so the exit stays clean.
    signals.async_wait([&](const boost::system::error_code& again_ec, int again) {
      if (again_ec)
        return;
      spdlog::warn("shutdown: second signal {}: closing connections in flight now", again);
      if (metrics_server)
        metrics_server->end_grace();
      api_server.end_grace();
    });
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          while (!started)
            co_await started_event.wait_until(async_event::clock::time_point::max());
          boost::system::error_code ignored;
          tls_reload.cancel(ignored);
          if (metrics_server)
            co_await metrics_server->shutdown(std::chrono::milliseconds(0));
          co_await api_server.shutdown(settings.shutdown_grace);
          // The deliveries first (their last retries parked), then the scheduler (before its
          // client, so no confirm of its last round is lost).
          if (deliveries)
            co_await deliveries->stop();
          if (retry_scheduler)
            co_await retry_scheduler->stop();
          if (workers) {
            co_await workers->stop();
            upstream->close();
            co_await worker_amqp->stop();
          }
          // After the delivery engine, whose last attempts the recorder writes.
          if (dlq_runner)
            dlq_runner->stop();
          if (attempt_recorder)
            attempt_recorder->stop();
          while (delivery_loops_running > 0)
            co_await delivery_loops_ended.wait_until(async_event::clock::time_point::max());
          co_await pushes.stop();
          if (proxy_ingress)
            co_await proxy_ingress->stop();
          co_await service_catalog.stop();
          co_await subscription_catalog.stop();
          authenticator->stop();
          route_follower.stop();
          co_await route_follower.wait_stopped();
          co_await route_resolver.stop();
          if (route_events)
            co_await route_events->stop();
          route_events_pool.shutdown();
          // A few seconds for the confirms of what is in flight and their marks: each one
          // saves a duplicate publish by the next sweeper.
          if (rabbitmq_relay)
            co_await rabbitmq_relay->stop(std::chrono::seconds(5));
          co_await postgres_watch.stop();
          buffer_dirs.stop();
          probe_pool.shutdown();
          relay_pool.shutdown();
          requests_pool.shutdown();
          query_pool.shutdown();
          routes_pool.shutdown();
          delivery_pool.shutdown();
          dlq_pool.shutdown();
          delivery_background_pool.shutdown();
          pool.shutdown();
          failover_log->close();
          qos0_log->close();
          spdlog::info("shutdown: complete");
          io.stop();
        },
        asio::detached);
  });

  try {
    const auto port = api_server.listen(settings.http_addr.host, settings.http_addr.port);
    spdlog::info("http[api]: listening on {}:{}", settings.http_addr.host, port);
    if (const auto second = config::metrics_listener(settings)) {
      metrics_server = std::make_unique<http::server>(io.get_executor(), server_options("metrics"),
                                                      metrics_routes, metrics);
      const auto mport = metrics_server->listen(second->host, second->port);
      spdlog::info("http[metrics]: listening on {}:{}", second->host, mport);
    }
  } catch (const std::exception& e) {
    // Asio throws boost::system::system_error, which is not a std::system_error.
    spdlog::critical("cannot listen: {}", e.what());
    return 1;
  }

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        if (rabbitmq_relay)
          rabbitmq_relay->start();
        if (proxy_ingress)
          proxy_ingress->start();
        co_await pushes.start();
        if (workers) {
          worker_amqp->start();
          workers->start();
        }
        const auto run_delivery_loop = [&](asio::awaitable<void> loop) {
          ++delivery_loops_running;
          asio::co_spawn(io, std::move(loop), [&](std::exception_ptr e) {
            if (e)
              spdlog::critical("delivery: a background loop failed");
            --delivery_loops_running;
            delivery_loops_ended.notify_all();
          });
        };
        if (attempt_recorder)
          run_delivery_loop(attempt_recorder->run());
        if (dlq_runner)
          run_delivery_loop(dlq_runner->run());
        if (retry_scheduler)
          retry_scheduler->start();
        if (deliveries)
          deliveries->start();
        co_await postgres_watch.start();
        api_server.start();
        if (metrics_server)
          metrics_server->start();
        spdlog::info("sluice {} started (pid {})", SLUICE_VERSION, ::getpid());
        started = true;
        started_event.notify_all();
      },
      asio::detached);

  io.run();
  return 0;
}

}  // namespace sluice::app
