#pragma once

#include <string>

#include "sluice/metrics/registry.hpp"

namespace sluice::delivery {

// The delivery engine's metric families (README "Delivery", metrics):
//   sluice_delivery_attempts_total{queue,outcome}   attempts by outcome: delivered, retry,
//                                                  dead_lettered, deferred
//   sluice_delivery_duration_seconds{queue}         HTTP request time of an attempt (a batch's
//                                                  request once per batch)
//   sluice_delivery_in_flight{queue}                messages held by this instance now (received,
//                                                  not yet acked or returned), all subscriptions
//   sluice_delivery_concurrency_limit{queue}        the AIMD limits, summed over subscriptions
//   sluice_delivery_lag_seconds{queue}              now - acceptance time of the oldest message
//                                                  held here; with none held, the lag the last
//                                                  one received had when it arrived (an idle
//                                                  queue shows how far behind it last was, a
//                                                  figure that neither drops to 0 nor grows
//                                                  while nothing waits); the largest of the
//                                                  queue's subscriptions
//   sluice_dead_letters_total{queue,reason}         messages dead-lettered here
//   sluice_delivery_requeued_total{queue,reason}    deliveries returned to RabbitMQ unacked
//                                                  because PostgreSQL could not take the retry
//                                                  or dead letter (store_unavailable), or the
//                                                  message's order had to be kept (ordering)
//   sluice_delivery_malformed_total{queue}          deliveries that were no sluice message
//                                                  (rejected)
// The gauges are set at collection time by delivery_service (metrics::registry::on_collect).
struct delivery_metrics {
  explicit delivery_metrics(metrics::registry& registry);

  metrics::family<metrics::counter>& attempts;
  metrics::family<metrics::histogram>& duration;
  metrics::family<metrics::gauge>& in_flight;
  metrics::family<metrics::gauge>& concurrency_limit;
  metrics::family<metrics::gauge>& lag;
  metrics::family<metrics::counter>& dead_letters;
  metrics::family<metrics::counter>& requeued;
  metrics::family<metrics::counter>& malformed;
};

// The series of one consumer, looked up once.
struct consumer_series {
  consumer_series(delivery_metrics& m, const std::string& queue);

  metrics::counter& delivered;
  metrics::counter& retry;
  metrics::counter& dead_lettered;
  metrics::counter& deferred;
  metrics::histogram& duration;
  metrics::counter& requeued_store;
  metrics::counter& requeued_ordering;
  metrics::counter& malformed;
  delivery_metrics& families;
  std::string queue;
};

}  // namespace sluice::delivery
