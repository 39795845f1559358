#include <algorithm>
#include <charconv>
#include <functional>
#include <limits>

#include "sluice/config/loader.hpp"
#include "sluice/config/secrets.hpp"
#include "sluice/core/ascii_lower.hpp"

namespace sluice::config {
namespace {

// A parse failure says what was expected; the caller adds the variable name and value.
struct bad_value {
  std::string expected;
};

std::uint64_t parse_unsigned(const std::string& text, std::uint64_t min, std::uint64_t max) {
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value < min || value > max) {
    throw bad_value{"an integer from " + std::to_string(min) + " to " + std::to_string(max)};
  }
  return value;
}

// Sizes accept a binary suffix (k, m, g = KiB, MiB, GiB) because byte counts of buffers are
// unreadable otherwise.
std::uint64_t parse_size(const std::string& text, std::uint64_t min, std::uint64_t max) {
  std::string digits = text;
  std::uint64_t unit = 1;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'k':
      case 'K':
        unit = 1ULL << 10;
        break;
      case 'm':
      case 'M':
        unit = 1ULL << 20;
        break;
      case 'g':
      case 'G':
        unit = 1ULL << 30;
        break;
      default:
        break;
    }
    if (unit != 1)
      digits.pop_back();
  }
  const std::string expected = "a size in bytes (suffix k, m or g allowed) from " +
                               std::to_string(min) + " to " + std::to_string(max);
  std::uint64_t value = 0;
  try {
    value = parse_unsigned(digits, 0, std::numeric_limits<std::uint64_t>::max() / unit);
  } catch (const bad_value&) {
    throw bad_value{expected};
  }
  value *= unit;
  if (value < min || value > max)
    throw bad_value{expected};
  return value;
}

listen_address parse_address(const std::string& text, bool allow_empty) {
  if (text.empty() && allow_empty)
    return {};
  const std::string expected = "HOST:PORT, e.g. 0.0.0.0:8080 or [::1]:8080";
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw bad_value{expected};
  std::string host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']')
      throw bad_value{expected};
    host = host.substr(1, host.size() - 2);
  }
  try {
    return {host, static_cast<std::uint16_t>(parse_unsigned(text.substr(colon + 1), 0, 65535))};
  } catch (const bad_value&) {
    throw bad_value{expected};
  }
}

std::string format_address(const listen_address& a) {
  if (a.host.empty())
    return "";
  const bool v6 = a.host.find(':') != std::string::npos;
  return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
}

std::string format_size(std::uint64_t bytes) {
  if (bytes != 0 && bytes % (1ULL << 30) == 0)
    return std::to_string(bytes >> 30) + "g";
  if (bytes != 0 && bytes % (1ULL << 20) == 0)
    return std::to_string(bytes >> 20) + "m";
  if (bytes != 0 && bytes % (1ULL << 10) == 0)
    return std::to_string(bytes >> 10) + "k";
  return std::to_string(bytes);
}

bool parse_flag(const std::string& value) {
  const std::string v = ascii_lower(value);
  for (const char* yes : {"1", "true", "yes", "on"}) {
    if (v == yes)
      return true;
  }
  for (const char* no : {"", "0", "false", "no", "off"}) {
    if (v == no)
      return false;
  }
  throw bad_value{"1, true, yes, on, or 0, false, no, off"};
}

struct setting_spec {
  std::string name;
  std::string description;
  std::function<void(settings&, const std::string&)> parse;
  std::function<std::string(const settings&)> format;
  bool secret = false;
};

template <typename Duration>
setting_spec duration_ms(std::string name, std::string description, Duration settings::*field,
                         std::uint64_t min, std::uint64_t max) {
  return {
      std::move(name), std::move(description),
      [=](settings& s, const std::string& v) { s.*field = Duration(parse_unsigned(v, min, max)); },
      [=](const settings& s) { return std::to_string((s.*field).count()); }};
}

template <typename Int>
setting_spec count(std::string name, std::string description, Int settings::*field,
                   std::uint64_t min, std::uint64_t max) {
  return {std::move(name), std::move(description),
          [=](settings& s, const std::string& v) {
            s.*field = static_cast<Int>(parse_unsigned(v, min, max));
          },
          [=](const settings& s) { return std::to_string(s.*field); }};
}

template <typename Int>
setting_spec size(std::string name, std::string description, Int settings::*field,
                  std::uint64_t min, std::uint64_t max) {
  return {std::move(name), std::move(description),
          [=](settings& s, const std::string& v) {
            s.*field = static_cast<Int>(parse_size(v, min, max));
          },
          [=](const settings& s) { return format_size(s.*field); }};
}

const std::vector<setting_spec>& table() {
  static const std::vector<setting_spec> specs = {
      {"SLUICE_HTTP_ADDR", "Address the HTTP API listens on (port 0 = ephemeral).",
       [](settings& s, const std::string& v) { s.http_addr = parse_address(v, false); },
       [](const settings& s) { return format_address(s.http_addr); }},
      {"METRICS_ADDR",
       "Optional second listener serving only /metrics and /health*, e.g. 127.0.0.1:9090 (empty = "
       "off).",
       [](settings& s, const std::string& v) { s.metrics_addr = parse_address(v, true); },
       [](const settings& s) { return format_address(s.metrics_addr); }},
      {"METRICS_PORT",
       "The same second listener as a port on SLUICE_HTTP_ADDR's host (empty = off); use one of "
       "METRICS_PORT and METRICS_ADDR.",
       [](settings& s, const std::string& v) {
         if (v.empty()) {
           s.metrics_port.reset();
           return;
         }
         try {
           s.metrics_port = static_cast<std::uint16_t>(parse_unsigned(v, 0, 65535));
         } catch (const bad_value&) {
           // Kubernetes injects <SERVICE>_PORT=tcp://ip:port for every Service in the
           // namespace, so a Service named "metrics" sets this variable behind the user's back.
           throw bad_value{v.rfind("tcp://", 0) == 0
                               ? "a port from 0 to 65535, or empty (a tcp:// value is what "
                                 "Kubernetes injects for a Service named \"metrics\": set "
                                 "METRICS_PORT explicitly or enableServiceLinks: false)"
                               : "a port from 0 to 65535, or empty"};
         }
       },
       [](const settings& s) { return s.metrics_port ? std::to_string(*s.metrics_port) : ""; }},
      size("HTTP_MAX_BODY_BYTES", "Largest request body accepted; larger gets 413.",
           &settings::http_max_body_bytes, 1024, 1ULL << 30),
      size("HTTP_MAX_HEADER_BYTES", "Largest request header block accepted; larger gets 431.",
           &settings::http_max_header_bytes, 1024, 1ULL << 20),
      duration_ms("HTTP_READ_TIMEOUT_MS",
                  "Time allowed to receive a whole request once it has started.",
                  &settings::http_read_timeout, 100, 3'600'000),
      duration_ms("HTTP_IDLE_TIMEOUT_MS", "Keep-alive connections idle this long are closed.",
                  &settings::http_idle_timeout, 100, 3'600'000),
      count("HTTP_MAX_CONNECTIONS", "Connections beyond this are refused with 503 and closed.",
            &settings::http_max_connections, 1, 1'000'000),
      duration_ms("SHUTDOWN_GRACE_MS", "On SIGTERM/SIGINT, time in-flight requests get to finish.",
                  &settings::shutdown_grace, 0, 600'000),
      {"DATABASE_URL",
       "PostgreSQL URL or conninfo; empty = libpq defaults (PGHOST, PGUSER, ... work).",
       [](settings& s, const std::string& v) {
         // libpq's own parser, so a typo stops start-up instead of failing every connection.
         if (const auto error = conninfo_error(v)) {
           throw bad_value{"a postgresql:// URL or a key=value conninfo that libpq reads (" +
                           *error + ")"};
         }
         s.database_url = v;
       },
       [](const settings& s) { return masked_conninfo(s.database_url); }, true},
      count("DB_POOL_MAX", "PostgreSQL connections in the pool.", &settings::db_pool_max, 1, 1000),
      duration_ms("DB_CONNECT_TIMEOUT_MS", "Deadline for one PostgreSQL connection attempt.",
                  &settings::db_connect_timeout, 100, 600'000),
      duration_ms("DB_STATEMENT_TIMEOUT_MS", "Deadline for one PostgreSQL round trip.",
                  &settings::db_statement_timeout, 100, 600'000),
      {"FILE_BUFFER_DIR", "Directory of the local file buffer (failover and QoS0 logs).",
       [](settings& s, const std::string& v) {
         if (v.empty())
           throw bad_value{"a directory path"};
         s.file_buffer_dir = v;
       },
       [](const settings& s) { return s.file_buffer_dir; }},
      {"FILE_BUFFER_FSYNC",
       "always = a 201 waits for the fsync covering it; interval = fsync every "
       "FILE_BUFFER_FLUSH_MS; never.",
       [](settings& s, const std::string& v) {
         if (v == "always")
           s.file_buffer_fsync = fsync_policy::always;
         else if (v == "interval")
           s.file_buffer_fsync = fsync_policy::interval;
         else if (v == "never")
           s.file_buffer_fsync = fsync_policy::never;
         else
           throw bad_value{"one of always, interval, never"};
       },
       [](const settings& s) {
         switch (s.file_buffer_fsync) {
           case fsync_policy::always:
             return std::string("always");
           case fsync_policy::interval:
             return std::string("interval");
           case fsync_policy::never:
             return std::string("never");
         }
         return std::string();
       }},
      duration_ms("FILE_BUFFER_FLUSH_MS", "fsync period under FILE_BUFFER_FSYNC=interval.",
                  &settings::file_buffer_flush, 1, 60'000),
      count("FILE_BUFFER_MAX_BATCH", "Records per PostgreSQL round trip when the buffer replays.",
            &settings::file_buffer_max_batch, 1, 100'000),
      size("FILE_BUFFER_MAX_BYTES",
           "Bound of each buffer log (failover, qos0) on disk; beyond it pushes get 503.",
           &settings::file_buffer_max_bytes, 1ULL << 20, 1ULL << 50),
      size("FILE_BUFFER_SEGMENT_BYTES", "Segment files rotate at this size.",
           &settings::file_buffer_segment_bytes, 64ULL << 10, 1ULL << 32),
      size("FILE_BUFFER_FAILED_MAX_BYTES",
           "Bound of each log's failed/ (records PostgreSQL rejected) on disk; at it a rejected "
           "record stays pending and replay of that log waits.",
           &settings::file_buffer_failed_max_bytes, 1ULL << 20, 1ULL << 50),
      count("PUSH_MAX_ITEMS", "Items one push request may carry.", &settings::push_max_items, 1,
            100'000),
      size("PUSH_MAX_PAYLOAD_BYTES", "Largest payload of one item (its JSON text).",
           &settings::push_max_payload_bytes, 16, 64ULL << 20),
      count("PUSH_BATCH_MAX_ROWS", "Rows of coalesced pushes per PostgreSQL round trip.",
            &settings::push_batch_max_rows, 1, 100'000),
      count("PUSH_QUEUE_MAX_ITEMS",
            "Items waiting for PostgreSQL; beyond it pushes get 503 with Retry-After.",
            &settings::push_queue_max_items, 1, 10'000'000),
      size("PUSH_QUEUE_MAX_BYTES",
           "Payload bytes waiting for PostgreSQL; beyond it pushes get 503 with Retry-After.",
           &settings::push_queue_max_bytes, 1ULL << 20, 1ULL << 40),
      {"RABBITMQ_URL",
       "RabbitMQ broker, amqp://user:pass@host:port/vhost (URL-encoded), or amqps:// for TLS "
       "(port 5671 by default); empty = relay off: messages are stored but not published.",
       [](settings& s, const std::string& v) {
         // The full parse (percent-decoding, port, query) is the amqp module's; the daemon
         // runs it at start-up. Here only what a typo most often gets wrong.
         if (!v.empty() && v.rfind("amqp://", 0) != 0 && v.rfind("amqps://", 0) != 0)
           throw bad_value{"an amqp:// or amqps:// user:pass@host:port/vhost URL, or empty"};
         s.rabbitmq_url = v;
       },
       [](const settings& s) { return masked_url(s.rabbitmq_url); }, true},
      {"RABBITMQ_CA_FILE",
       "PEM file of the CA certificates an amqps:// broker's certificate must chain to; empty = "
       "the system's CA store. The broker's name must match its certificate either way.",
       [](settings& s, const std::string& v) { s.rabbitmq_ca_file = v; },
       [](const settings& s) { return s.rabbitmq_ca_file; }},
      {"RABBITMQ_HEARTBEAT_SEC",
       "AMQP heartbeat proposed to the broker (0 = off); a silent peer is dropped after two.",
       [](settings& s, const std::string& v) {
         s.rabbitmq_heartbeat = std::chrono::seconds(parse_unsigned(v, 0, 65535));
       },
       [](const settings& s) { return std::to_string(s.rabbitmq_heartbeat.count()); }},
      count("RABBITMQ_CONFIRM_WINDOW",
            "Publishes awaiting the broker's confirm at once; a full window makes the relay wait.",
            &settings::rabbitmq_confirm_window, 1, 1'000'000),
      size("RABBITMQ_CONFIRM_WINDOW_BYTES",
           "Bytes of publishes awaiting the broker's confirm at once (body, names, properties); "
           "a full window makes the relay wait.",
           &settings::rabbitmq_confirm_window_bytes, 64ULL << 10, 1ULL << 34),
      {"RABBITMQ_QUEUE_TYPE",
       "Type of the RabbitMQ queues sluice declares: quorum (replicated) or classic.",
       [](settings& s, const std::string& v) {
         if (v == "quorum")
           s.rabbitmq_queue_type = queue_type::quorum;
         else if (v == "classic")
           s.rabbitmq_queue_type = queue_type::classic;
         else
           throw bad_value{"quorum or classic"};
       },
       [](const settings& s) {
         return std::string(s.rabbitmq_queue_type == queue_type::quorum ? "quorum" : "classic");
       }},
      count("RELAY_QUEUE_MAX",
            "Committed messages held in memory waiting to be published; beyond it they are left "
            "to the sweeper (pushes are never slowed).",
            &settings::relay_queue_max, 1, 100'000'000),
      size("RELAY_QUEUE_MAX_BYTES", "Bound of the same in-memory queue in payload bytes.",
           &settings::relay_queue_max_bytes, 1ULL << 20, 1ULL << 40),
      duration_ms("RELAY_SWEEP_INTERVAL_MS",
                  "How often the sweeper looks for unpublished rows (and the backlog is measured).",
                  &settings::relay_sweep_interval, 10, 3'600'000),
      duration_ms("RELAY_SWEEP_GRACE_MS",
                  "Rows stored more recently than this are left to the in-memory path. It bounds "
                  "how long rows left behind by a crash wait for the sweeper; shorter means more "
                  "rows re-read and re-marked by the sweeper when RabbitMQ is slower than the "
                  "pushes (5 s cost 25-30 % of end-to-end throughput in BENCHMARKS.md).",
                  &settings::relay_sweep_grace, 0, 3'600'000),
      count("RELAY_SWEEP_BATCH", "Rows the sweeper claims per PostgreSQL round trip.",
            &settings::relay_sweep_batch, 1, 100'000),
      duration_ms("RELAY_CLAIM_LEASE_MS",
                  "How long a sweeper's claim keeps other instances off a row it is publishing.",
                  &settings::relay_claim_lease, 1'000, 3'600'000),
      {"SLUICE_ROLES",
       "What this instance runs: ingress (HTTP API and proxy), workers (consumers that call the "
       "target services), or both, comma-separated.",
       [](settings& s, const std::string& v) {
         bool ingress = false;
         bool workers = false;
         std::size_t start = 0;
         while (start <= v.size()) {
           const auto comma = std::min(v.find(',', start), v.size());
           const std::string role = ascii_lower(v.substr(start, comma - start));
           if (role == "ingress")
             ingress = true;
           else if (role == "workers")
             workers = true;
           else
             throw bad_value{"ingress, workers, or ingress,workers"};
           start = comma + 1;
         }
         s.role_ingress = ingress;
         s.role_workers = workers;
       },
       [](const settings& s) {
         if (s.role_ingress && s.role_workers)
           return std::string("ingress,workers");
         return std::string(s.role_ingress ? "ingress" : "workers");
       }},
      {"RPC_TIMEOUT_SEC",
       "How long a proxied request waits for its reply unless its service sets timeoutMs.",
       [](settings& s, const std::string& v) {
         s.rpc_timeout = std::chrono::seconds(parse_unsigned(v, 1, 86'400));
       },
       [](const settings& s) { return std::to_string(s.rpc_timeout.count()); }},
      count("CONCURRENCY_PER_QUEUE",
            "Requests a worker runs at once per service and flavour (the prefetch) unless the "
            "service sets concurrency.",
            &settings::concurrency_per_queue, 1, 65'535),
      {"SERVICES_FILE",
       "JSON file of services (and their schedules), re-read on change and on SIGHUP; empty = "
       "none.",
       [](settings& s, const std::string& v) { s.services_file = v; },
       [](const settings& s) { return s.services_file; }},
      {"TARGET_SVC_NAME", "Defines one service of this name from the environment; empty = none.",
       [](settings& s, const std::string& v) { s.target_svc_name = v; },
       [](const settings& s) { return s.target_svc_name; }},
      {"TARGET_SVC_NAMESPACE", "Namespace of services that do not name one.",
       [](settings& s, const std::string& v) {
         if (v.empty())
           throw bad_value{"a namespace name"};
         s.target_svc_namespace = v;
       },
       [](const settings& s) { return s.target_svc_namespace; }},
      {"TARGET_SVC_SCHEME",
       "Scheme of a flavour's derived URL, <scheme>://<service>-<flavour>.<namespace>[:port].",
       [](settings& s, const std::string& v) {
         if (v != "http")
           throw bad_value{"http (https targets are not supported yet)"};
         s.target_svc_scheme = v;
       },
       [](const settings& s) { return s.target_svc_scheme; }},
      {"TARGET_SVC_PORT", "Port of a flavour's derived URL; empty = the scheme's default.",
       [](settings& s, const std::string& v) {
         if (v.empty()) {
           s.target_svc_port.reset();
           return;
         }
         s.target_svc_port = static_cast<std::uint16_t>(parse_unsigned(v, 1, 65535));
       },
       [](const settings& s) {
         return s.target_svc_port ? std::to_string(*s.target_svc_port) : "";
       }},
      {"TARGET_SVC_FLAVOURS",
       "Flavours of the TARGET_SVC_NAME service, comma-separated; the first is its default.",
       [](settings& s, const std::string& v) {
         if (v.empty())
           throw bad_value{"one or more flavour names, comma-separated"};
         s.target_svc_flavours = v;
       },
       [](const settings& s) { return s.target_svc_flavours; }},
      {"SERVICE_NAME",
       "Defines one service of this name whose one flavour calls DOWNSTREAM_URL; empty = none.",
       [](settings& s, const std::string& v) { s.service_name = v; },
       [](const settings& s) { return s.service_name; }},
      {"DOWNSTREAM_URL", "Target URL of the SERVICE_NAME service.",
       [](settings& s, const std::string& v) { s.downstream_url = v; },
       [](const settings& s) { return s.downstream_url; }},
      {"BATCH_MODE",
       "1 (or true, yes, on): the SERVICE_NAME service sends its requests in batches to "
       "BATCH_DOWNSTREAM_URL.",
       [](settings& s, const std::string& value) {
         const std::string v = ascii_lower(value);
         if (v == "1" || v == "true" || v == "yes" || v == "on")
           s.batch_mode = true;
         else if (v.empty() || v == "0" || v == "false" || v == "no" || v == "off")
           s.batch_mode = false;
         else
           throw bad_value{"1, true, yes, on, or 0, false, no, off"};
       },
       [](const settings& s) { return s.batch_mode ? "1" : "0"; }},
      {"BATCH_DOWNSTREAM_URL", "Batch URL of the SERVICE_NAME service under BATCH_MODE.",
       [](settings& s, const std::string& v) { s.batch_downstream_url = v; },
       [](const settings& s) { return s.batch_downstream_url; }},
      count("BATCH_SIZE", "Requests per batch of the SERVICE_NAME service under BATCH_MODE.",
            &settings::batch_size, 1, 10'000),
      duration_ms("BATCH_MAX_WAIT_MS",
                  "A batch of the SERVICE_NAME service is sent after this even when not full.",
                  &settings::batch_max_wait, 1, 60'000),
      {"ENQUEUER_REPLY_TIMEOUT",
       "Seconds the SERVICE_NAME service's callers wait for a reply; empty = RPC_TIMEOUT_SEC.",
       [](settings& s, const std::string& v) {
         if (v.empty()) {
           s.enqueuer_reply_timeout.reset();
           return;
         }
         s.enqueuer_reply_timeout = std::chrono::seconds(parse_unsigned(v, 1, 86'400));
       },
       [](const settings& s) {
         return s.enqueuer_reply_timeout ? std::to_string(s.enqueuer_reply_timeout->count()) : "";
       }},
      count("PROXY_MAX_PENDING",
            "Proxied requests waiting for their reply at once; beyond it the proxy answers 503 "
            "with Retry-After.",
            &settings::proxy_max_pending, 1, 10'000'000),
      size("PROXY_MAX_INFLIGHT_BYTES",
           "Bytes of proxied request bodies waiting for their reply at once; beyond it 503.",
           &settings::proxy_max_inflight_bytes, 1ULL << 20, 1ULL << 40),
      count("UPSTREAM_MAX_CONNECTIONS_PER_HOST",
            "Connections the workers open to one target host:port at most.",
            &settings::upstream_max_connections_per_host, 1, 100'000),
      duration_ms("UPSTREAM_CONNECT_TIMEOUT_MS", "Deadline for connecting to a target.",
                  &settings::upstream_connect_timeout, 10, 600'000),
      duration_ms("UPSTREAM_IDLE_TIMEOUT_MS",
                  "Idle keep-alive connections to targets close after this.",
                  &settings::upstream_idle_timeout, 100, 3'600'000),
      size("UPSTREAM_MAX_RESPONSE_BYTES",
           "Largest target response accepted; a larger one answers the caller 502.",
           &settings::upstream_max_response_bytes, 1024, 1ULL << 30),
      {"DELIVERY_MODE",
       "Relay mode of queues never set with PUT /api/v1/queues/{queue}: queue (one "
       "subscription, competing consumers) or broadcast (every subscription gets every message).",
       [](settings& s, const std::string& v) {
         if (v == "queue")
           s.default_delivery_mode = delivery_mode::queue;
         else if (v == "broadcast")
           s.default_delivery_mode = delivery_mode::broadcast;
         else
           throw bad_value{"queue or broadcast"};
       },
       [](const settings& s) {
         return std::string(s.default_delivery_mode == delivery_mode::broadcast ? "broadcast"
                                                                                : "queue");
       }},
      duration_ms("DELIVERY_RETRY_POLL_MS",
                  "How often the delivery workers look for due retries and re-drives written by "
                  "other instances (their own wake at the due time).",
                  &settings::delivery_retry_poll, 10, 600'000),
      {"DELIVERY_ATTEMPTS_RETENTION_HOURS",
       "Hours delivery attempt records are kept (GET /api/v1/messages/{id}/deliveries).",
       [](settings& s, const std::string& v) {
         s.delivery_attempts_retention = std::chrono::hours(parse_unsigned(v, 1, 87'600));
       },
       [](const settings& s) { return std::to_string(s.delivery_attempts_retention.count()); }},
      count("DELIVERY_ATTEMPTS_QUEUE_MAX",
            "Attempt records waiting to be written; beyond it records are dropped and counted "
            "(the deliveries themselves are not affected).",
            &settings::delivery_attempts_queue_max, 1, 10'000'000),
      count("DELIVERY_BREAKER_FAILURES",
            "Consecutive failed deliveries to one target host:port that open its circuit "
            "breaker.",
            &settings::delivery_breaker_failures, 1, 1'000'000),
      duration_ms("DELIVERY_BREAKER_OPEN_MS",
                  "How long an open circuit breaker waits before its first probe; doubles after "
                  "every failed probe, up to 60 s.",
                  &settings::delivery_breaker_open, 10, 600'000),
      duration_ms("DELIVERY_RETRY_AFTER_MAX_MS",
                  "Longest Retry-After of a target that is honoured; a longer one waits this.",
                  &settings::delivery_retry_after_max, 0, 86'400'000),
      {"APP_POSITIVE_CACHE_TTL",
       "Seconds a resolved route is served from the cache without asking PostgreSQL (a change "
       "reaches every instance at once anyway; this bounds a missed notification).",
       [](settings& s, const std::string& v) {
         s.route_positive_ttl = std::chrono::seconds(parse_unsigned(v, 1, 86'400));
       },
       [](const settings& s) { return std::to_string(s.route_positive_ttl.count()); }},
      {"APP_NEGATIVE_CACHE_TTL",
       "Seconds a route that does not exist (or is inactive) is remembered as missing.",
       [](settings& s, const std::string& v) {
         s.route_negative_ttl = std::chrono::seconds(parse_unsigned(v, 0, 86'400));
       },
       [](const settings& s) { return std::to_string(s.route_negative_ttl.count()); }},
      count("ROUTE_CACHE_MAX_ENTRIES",
            "Routes (found or missing) the resolve cache holds; the least recently used goes "
            "first.",
            &settings::route_cache_max_entries, 1, 10'000'000),
      {"ROUTE_STALE_MAX_SEC",
       "Seconds past its TTL a cached route still resolves while PostgreSQL cannot answer "
       "(counted as stale); 0 = never serve stale.",
       [](settings& s, const std::string& v) {
         s.route_stale_max = std::chrono::seconds(parse_unsigned(v, 0, 86'400));
       },
       [](const settings& s) { return std::to_string(s.route_stale_max.count()); }},
      count("DEFAULT_PAGE_SIZE",
            "Items a list or query page holds when the request gives no limit.",
            &settings::default_page_size, 1, 100'000),
      count("MAX_PAGE_SIZE", "Largest limit a list or query page accepts; more is a 400.",
            &settings::max_page_size, 1, 100'000),
      size("INGEST_MAX_BYTES",
           "Largest body of one streaming ingest upload (/api/v1/queues/{queue}/ingest); more "
           "gets 413.",
           &settings::ingest_max_bytes, 1024, 1ULL << 40),
      {"AUTH_TOKEN",
       "Static bearer token with every role; set (or AUTH_TOKENS_FILE, or a JWT key) = every /api "
       "call needs a token.",
       [](settings& s, const std::string& v) { s.auth_token = v; },
       [](const settings& s) {
         return (s.auth_token.empty() ? std::string() : std::string("(set)"));
       },
       true},
      {"AUTH_TOKENS_FILE",
       "JSON file of named tokens by SHA-256 with roles and name prefixes, re-read on SIGHUP; "
       "empty = none.",
       [](settings& s, const std::string& v) { s.auth_tokens_file = v; },
       [](const settings& s) { return s.auth_tokens_file; }},
      {"AUTH_JWT_HS256_SECRET",
       "Secret of HS256-signed JWT bearer tokens, 32 bytes or more; empty = none.",
       [](settings& s, const std::string& v) { s.auth_jwt_hs256_secret = v; },
       [](const settings& s) {
         return (s.auth_jwt_hs256_secret.empty() ? std::string() : std::string("(set)"));
       },
       true},
      {"AUTH_JWT_PUBLIC_KEY_FILE",
       "PEM public key of RS256 or ES256 JWT bearer tokens; empty = none.",
       [](settings& s, const std::string& v) { s.auth_jwt_public_key_file = v; },
       [](const settings& s) { return s.auth_jwt_public_key_file; }},
      {"AUTH_JWT_ROLES_CLAIM", "JWT claim holding the caller's roles (read, write, admin).",
       [](settings& s, const std::string& v) {
         if (v.empty())
           throw bad_value{"a claim name"};
         s.auth_jwt_roles_claim = v;
       },
       [](const settings& s) { return s.auth_jwt_roles_claim; }},
      {"AUTH_JWT_ISSUER", "Required iss of JWTs; empty = not checked.",
       [](settings& s, const std::string& v) { s.auth_jwt_issuer = v; },
       [](const settings& s) { return s.auth_jwt_issuer; }},
      {"AUTH_JWT_AUDIENCE", "Required aud of JWTs; empty = JWTs with an aud claim are refused.",
       [](settings& s, const std::string& v) { s.auth_jwt_audience = v; },
       [](const settings& s) { return s.auth_jwt_audience; }},
      {"METRICS_AUTH",
       "1 (or true, yes, on): /metrics needs a token with the read role too (needs a token source "
       "configured).",
       [](settings& s, const std::string& value) { s.metrics_auth = parse_flag(value); },
       [](const settings& s) { return s.metrics_auth ? "1" : "0"; }},
      {"SLUICE_TLS_CERT",
       "PEM certificate chain; with SLUICE_TLS_KEY the HTTP listeners speak only HTTPS. Re-read on "
       "SIGHUP.",
       [](settings& s, const std::string& v) { s.tls_cert_file = v; },
       [](const settings& s) { return s.tls_cert_file; }},
      {"SLUICE_TLS_KEY", "PEM private key of SLUICE_TLS_CERT. Re-read on SIGHUP.",
       [](settings& s, const std::string& v) { s.tls_key_file = v; },
       [](const settings& s) { return s.tls_key_file; }},
      count("METRICS_MAX_QUEUE_LABELS",
            "Distinct queue names sluice_push_items_total keeps apart; pushes to further queues "
            "are counted under queue=\"(other)\".",
            &settings::metrics_max_queue_labels, 1, 1'000'000),
      {"DEBUG", "1 (or true, yes, on) logs at debug level unless LOG_LEVEL is set.",
       [](settings& s, const std::string& value) { s.debug = parse_flag(value); },
       [](const settings& s) { return s.debug ? "1" : "0"; }},
      {"LOG_LEVEL", "trace, debug, info, warn, error or off. DEBUG=1 is a shorthand for debug.",
       [](settings& s, const std::string& v) {
         static const char* levels[] = {"trace", "debug", "info", "warn", "error", "off"};
         for (const char* level : levels) {
           if (v == level) {
             s.log_level = v;
             return;
           }
         }
         throw bad_value{"one of trace, debug, info, warn, error, off"};
       },
       [](const settings& s) { return s.log_level; }},
  };
  return specs;
}

}  // namespace

settings load_settings(const env_map& env) {
  settings out;
  std::string problems;
  for (const auto& spec : table()) {
    const auto it = env.find(spec.name);
    if (it == env.end())
      continue;
    try {
      spec.parse(out, it->second);
    } catch (const bad_value& bad) {
      const std::string shown = spec.secret ? "(hidden)" : "'" + it->second + "'";
      problems += "\n  " + spec.name + "=" + shown + ": expected " + bad.expected;
    }
  }
  if (out.metrics_port && !out.metrics_addr.host.empty()) {
    problems +=
        "\n  METRICS_PORT and METRICS_ADDR: expected only one of them (both name the "
        "second listener)";
  }
  // Half a TLS configuration must not quietly serve plain HTTP.
  if (out.tls_cert_file.empty() != out.tls_key_file.empty()) {
    problems +=
        "\n  SLUICE_TLS_CERT and SLUICE_TLS_KEY: expected both (HTTPS) or neither (plain HTTP)";
  }
  // DEBUG=1 is the seed systems' switch; an explicit LOG_LEVEL still wins.
  if (out.debug && env.count("LOG_LEVEL") == 0)
    out.log_level = "debug";
  if (!problems.empty())
    throw config_error("invalid settings:" + problems);
  return out;
}

std::optional<listen_address> metrics_listener(const settings& s) {
  if (!s.metrics_addr.host.empty())
    return s.metrics_addr;
  if (s.metrics_port)
    return listen_address{s.http_addr.host, *s.metrics_port};
  return std::nullopt;
}

std::vector<setting_info> describe(const settings& effective) {
  const settings defaults;
  std::vector<setting_info> out;
  for (const auto& spec : table()) {
    out.push_back({spec.name, spec.format(effective), spec.format(defaults), spec.description});
  }
  return out;
}

}  // namespace sluice::config
