#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace sluice::config {

enum class fsync_policy { always, interval, never };
enum class queue_type { quorum, classic };
// DELIVERY_MODE: the relay mode of queues never set with PUT /api/v1/queues/{queue}.
enum class delivery_mode { queue, broadcast };

struct listen_address {
  std::string host;
  std::uint16_t port = 0;  // 0 = pick an ephemeral port (tests)
};

// Every setting of the daemon, typed and defaulted. The table in setting_table.cpp maps each
// field to its environment variable, parser and documentation; nothing reads env vars elsewhere.
struct settings {
  // HTTP
  listen_address http_addr{"0.0.0.0", 8080};
  // The optional second listener, as METRICS_ADDR or as METRICS_PORT on http_addr's host (at
  // most one is set); metrics_listener() says which address it is.
  listen_address metrics_addr{};  // empty host = not given
  std::optional<std::uint16_t> metrics_port;
  std::size_t http_max_body_bytes = 8 * 1024 * 1024;
  std::size_t http_max_header_bytes = 16 * 1024;
  std::chrono::milliseconds http_read_timeout{10'000};
  std::chrono::milliseconds http_idle_timeout{60'000};
  std::size_t http_max_connections = 10'000;
  std::chrono::milliseconds shutdown_grace{10'000};

  // PostgreSQL
  std::string database_url;  // empty = libpq defaults and PG* variables
  std::size_t db_pool_max = 8;
  std::chrono::milliseconds db_connect_timeout{3'000};
  std::chrono::milliseconds db_statement_timeout{5'000};

  // File buffer
  std::string file_buffer_dir = "/var/lib/sluice/buffer";
  fsync_policy file_buffer_fsync = fsync_policy::always;
  std::chrono::milliseconds file_buffer_flush{10};
  std::size_t file_buffer_max_batch = 1'000;
  std::uint64_t file_buffer_max_bytes = 1024ULL * 1024 * 1024;
  std::uint64_t file_buffer_segment_bytes = 64ULL * 1024 * 1024;
  std::uint64_t file_buffer_failed_max_bytes = 256ULL * 1024 * 1024;

  // Push path
  std::size_t push_max_items = 1'000;
  std::size_t push_max_payload_bytes = 1024 * 1024;
  std::size_t push_batch_max_rows = 500;
  std::size_t push_queue_max_items = 50'000;
  std::size_t push_queue_max_bytes = 256ULL << 20;

  // RabbitMQ relay
  std::string rabbitmq_url;  // empty = relay off: messages are stored but not published
  std::chrono::seconds rabbitmq_heartbeat{30};
  std::string rabbitmq_ca_file;  // RABBITMQ_CA_FILE: amqps:// trust anchors; empty = system store
  std::size_t rabbitmq_confirm_window = 1'000;
  std::size_t rabbitmq_confirm_window_bytes = 64ULL << 20;
  queue_type rabbitmq_queue_type = queue_type::quorum;
  std::size_t relay_queue_max = 200'000;
  std::uint64_t relay_queue_max_bytes = 256ULL * 1024 * 1024;
  std::chrono::milliseconds relay_sweep_interval{1'000};
  std::chrono::milliseconds relay_sweep_grace{30'000};
  std::size_t relay_sweep_batch = 1'000;
  std::chrono::milliseconds relay_claim_lease{30'000};

  // Request proxy and workers (SLUICE_ROLES: which halves this instance runs)
  bool role_ingress = true;
  bool role_workers = true;
  std::chrono::seconds rpc_timeout{60};      // a service's default timeoutMs
  std::uint32_t concurrency_per_queue = 32;  // a service's default concurrency (prefetch)
  std::string services_file;                 // empty = none
  // One service from the environment (the router/consumer pair's names).
  std::string target_svc_name;  // empty = none
  std::string target_svc_namespace = "default";
  std::string target_svc_scheme = "http";
  std::optional<std::uint16_t> target_svc_port;
  std::string target_svc_flavours = "std";  // comma-separated; the first is the default
  // One service from the environment (the enqueuer/dequeuer pair's names).
  std::string service_name;  // empty = none
  std::string downstream_url;
  bool batch_mode = false;
  std::string batch_downstream_url;
  std::size_t batch_size = 10;
  std::chrono::milliseconds batch_max_wait{50};
  std::optional<std::chrono::seconds> enqueuer_reply_timeout;  // that service's timeout
  // Bounds of the ingress side: requests waiting for a reply, and their bodies' bytes.
  std::size_t proxy_max_pending = 10'000;
  std::uint64_t proxy_max_inflight_bytes = 256ULL << 20;
  // The workers' HTTP client.
  std::size_t upstream_max_connections_per_host = 64;
  std::chrono::milliseconds upstream_connect_timeout{3'000};
  std::chrono::milliseconds upstream_idle_timeout{30'000};
  std::uint64_t upstream_max_response_bytes = 8ULL << 20;

  // Delivery workers (subscriptions: queue -> HTTP)
  delivery_mode default_delivery_mode = delivery_mode::queue;
  std::chrono::milliseconds delivery_retry_poll{1'000};
  std::chrono::hours delivery_attempts_retention{72};
  std::size_t delivery_attempts_queue_max = 100'000;
  std::uint32_t delivery_breaker_failures = 20;
  std::chrono::milliseconds delivery_breaker_open{5'000};
  std::chrono::milliseconds delivery_retry_after_max{600'000};

  // Route registry (tenant/service/env/version -> url): the resolve cache
  std::chrono::seconds route_positive_ttl{60};  // APP_POSITIVE_CACHE_TTL
  std::chrono::seconds route_negative_ttl{10};  // APP_NEGATIVE_CACHE_TTL
  std::size_t route_cache_max_entries = 100'000;
  // How long a cached route past its TTL still resolves while PostgreSQL cannot answer.
  std::chrono::seconds route_stale_max{300};

  // Query API (issue #12)
  std::size_t default_page_size = 100;
  std::size_t max_page_size = 1'000;

  // Streaming ingest (POST /api/v1/queues/{queue}/ingest)
  std::uint64_t ingest_max_bytes = 16ULL << 30;

  // Authentication: all empty = the API is open (as before)
  std::string auth_token;                // one static bearer token with every role
  std::string auth_tokens_file;          // JSON {"tokens":[{name, sha256, roles, prefixes}]}
  std::string auth_jwt_hs256_secret;     // HS256 JWTs signed with this secret
  std::string auth_jwt_public_key_file;  // RS256/ES256 JWTs verified with this PEM key
  std::string auth_jwt_roles_claim = "roles";
  std::string auth_jwt_issuer;    // empty = iss not checked
  std::string auth_jwt_audience;  // empty = aud not checked
  bool metrics_auth = false;      // /metrics needs a token with read

  // TLS on the HTTP listeners: both set = HTTPS only
  std::string tls_cert_file;  // SLUICE_TLS_CERT, PEM chain
  std::string tls_key_file;   // SLUICE_TLS_KEY, PEM private key

  // Metrics
  std::size_t metrics_max_queue_labels = 1'000;

  // Logging
  std::string log_level = "info";
  bool debug = false;  // DEBUG: log_level debug unless LOG_LEVEL is given
};

// Where the second listener (/metrics and /health* only) listens; nothing when it is off.
std::optional<listen_address> metrics_listener(const settings& s);

}  // namespace sluice::config
