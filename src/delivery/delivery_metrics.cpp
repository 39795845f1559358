#include "sluice/delivery/delivery_metrics.hpp"

namespace sluice::delivery {

delivery_metrics::delivery_metrics(metrics::registry& registry)
    : attempts(
          registry.add_counter("sluice_delivery_attempts_total",
                               "Delivery attempts by outcome (delivered, retry, dead_lettered, "
                               "deferred: parked for an open circuit without an attempt).",
                               {"queue", "outcome"})),
      duration(registry.add_histogram("sluice_delivery_duration_seconds",
                                      "Time of a delivery's HTTP request (a batch's once).",
                                      {"queue"}, metrics::latency_buckets())),
      in_flight(registry.add_gauge("sluice_delivery_in_flight",
                                   "Messages this instance holds for delivery now (received from "
                                   "RabbitMQ, not yet acked or returned).",
                                   {"queue"})),
      concurrency_limit(registry.add_gauge(
          "sluice_delivery_concurrency_limit",
          "Adaptive (AIMD) concurrency limit of the queue's subscriptions, summed.", {"queue"})),
      lag(registry.add_gauge("sluice_delivery_lag_seconds",
                             "Now minus the acceptance time of the oldest message held here for "
                             "delivery; with none held, the lag the last one received had when it "
                             "arrived.",
                             {"queue"})),
      dead_letters(registry.add_counter("sluice_dead_letters_total",
                                        "Messages dead-lettered, by reason.", {"queue", "reason"})),
      requeued(registry.add_counter(
          "sluice_delivery_requeued_total",
          "Deliveries returned to RabbitMQ unacked (store_unavailable: PostgreSQL could not take "
          "the retry or dead letter; ordering: behind such a one in its partition).",
          {"queue", "reason"})),
      malformed(registry.add_counter("sluice_delivery_malformed_total",
                                     "Deliveries that were no sluice message (rejected).",
                                     {"queue"})) {}

consumer_series::consumer_series(delivery_metrics& m, const std::string& q)
    : delivered(m.attempts.with({q, "delivered"})),
      retry(m.attempts.with({q, "retry"})),
      dead_lettered(m.attempts.with({q, "dead_lettered"})),
      deferred(m.attempts.with({q, "deferred"})),
      duration(m.duration.with({q})),
      requeued_store(m.requeued.with({q, "store_unavailable"})),
      requeued_ordering(m.requeued.with({q, "ordering"})),
      malformed(m.malformed.with({q})),
      families(m),
      queue(q) {}

}  // namespace sluice::delivery
