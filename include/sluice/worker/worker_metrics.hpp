#pragma once

#include <string>

#include "sluice/metrics/registry.hpp"
#include "sluice/worker/forward_outcome.hpp"

namespace sluice::worker {

// The workers' metric families:
//   sluice_worker_messages_total{service,flavour,outcome}   deliveries by outcome
//   sluice_worker_forward_seconds{service,flavour}          target call (or batch wait) time
//   sluice_worker_in_flight{queue}                          deliveries being handled now
//   sluice_worker_store_retries_total{service}              failed response_sink::store() calls
struct worker_metrics {
  explicit worker_metrics(metrics::registry& registry);

  metrics::family<metrics::counter>& messages;
  metrics::family<metrics::histogram>& forward_seconds;
  metrics::family<metrics::gauge>& in_flight;
  metrics::family<metrics::counter>& store_retries;
};

// The series of one consumer, looked up once.
struct consumer_metrics {
  consumer_metrics(worker_metrics& m, const std::string& service, const std::string& flavour,
                   const std::string& queue);

  metrics::counter& count(outcome o);

  metrics::counter* by_outcome[outcome_count];
  metrics::histogram& forward_seconds;
  metrics::gauge& in_flight;
  metrics::counter& store_retries;
};

}  // namespace sluice::worker
