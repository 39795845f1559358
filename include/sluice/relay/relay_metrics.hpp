#pragma once

#include "sluice/metrics/registry.hpp"

namespace sluice::relay {

// The relay's metric families, registered once and shared by its loops (several of them count
// into the same family, e.g. failed publishes).
struct relay_metrics {
  explicit relay_metrics(metrics::registry& registry);

  metrics::counter& published;
  metrics::counter& nacked;
  metrics::counter& returned;
  metrics::counter& failed;
  metrics::counter& deferred;
  metrics::counter& swept;
  metrics::histogram& confirm_latency;
  metrics::gauge& backlog;
  metrics::gauge& backlog_age;
  metrics::gauge& queue_items;
  metrics::gauge& unconfirmed;
  metrics::gauge& amqp_connected;
  metrics::gauge& amqp_blocked;
  metrics::counter& amqp_reconnects;
};

}  // namespace sluice::relay
