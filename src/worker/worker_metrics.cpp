#include "sluice/worker/worker_metrics.hpp"

namespace sluice::worker {

worker_metrics::worker_metrics(metrics::registry& registry)
    : messages(registry.add_counter("sluice_worker_messages_total",
                                    "Proxied requests a worker took from a flavour queue, by "
                                    "outcome (ok: the target answered, whatever its status).",
                                    {"service", "flavour", "outcome"})),
      forward_seconds(registry.add_histogram(
          "sluice_worker_forward_seconds",
          "Time from forwarding a request to the target's answer (in batch mode: to the batch's).",
          {"service", "flavour"}, metrics::latency_buckets())),
      in_flight(registry.add_gauge("sluice_worker_in_flight",
                                   "Deliveries of a flavour queue being handled now (at most the "
                                   "service's concurrency).",
                                   {"queue"})),
      store_retries(registry.add_counter(
          "sluice_worker_store_retries_total",
          "Async responses that could not be stored at the first attempt (retried; the delivery "
          "stays unacked until stored).",
          {"service"})) {}

consumer_metrics::consumer_metrics(worker_metrics& m, const std::string& service,
                                   const std::string& flavour, const std::string& queue)
    : by_outcome{&m.messages.with({service, flavour, to_string(outcome::ok)}),
                 &m.messages.with({service, flavour, to_string(outcome::upstream_error)}),
                 &m.messages.with({service, flavour, to_string(outcome::timeout)}),
                 &m.messages.with({service, flavour, to_string(outcome::expired)}),
                 &m.messages.with({service, flavour, to_string(outcome::malformed)}),
                 &m.messages.with({service, flavour, to_string(outcome::no_route)}),
                 &m.messages.with({service, flavour, to_string(outcome::invalid_route_header)})},
      forward_seconds(m.forward_seconds.with({service, flavour})),
      in_flight(m.in_flight.with({queue})),
      store_retries(m.store_retries.with({service})) {}

metrics::counter& consumer_metrics::count(outcome o) {
  return *by_outcome[static_cast<int>(o)];
}

}  // namespace sluice::worker
