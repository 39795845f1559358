#include "sluice/relay/relay_metrics.hpp"

namespace sluice::relay {

relay_metrics::relay_metrics(metrics::registry& registry)
    : published(registry
                    .add_counter("sluice_relay_published_total",
                                 "Messages RabbitMQ confirmed (basic.ack), re-sends included.")
                    .get()),
      nacked(registry
                 .add_counter("sluice_relay_nacked_total",
                              "Publishes RabbitMQ refused (basic.nack); left for the sweeper.")
                 .get()),
      returned(registry
                   .add_counter("sluice_relay_returned_total",
                                "Queue-mode publishes RabbitMQ could not route (basic.return); "
                                "left for the sweeper.")
                   .get()),
      failed(registry
                 .add_counter("sluice_relay_failed_total",
                              "Publishes never confirmed (channel error, shutdown, refused "
                              "declare); left for the sweeper.")
                 .get()),
      deferred(registry
                   .add_counter("sluice_relay_deferred_total",
                                "Committed messages dropped from memory (queue full, or waited "
                                "too long) and left for the sweeper.")
                   .get()),
      swept(registry
                .add_counter("sluice_relay_swept_total",
                             "Unpublished rows the sweeper claimed and handed to the publisher.")
                .get()),
      confirm_latency(registry
                          .add_histogram("sluice_relay_confirm_latency_seconds",
                                         "From a message entering the confirm window to "
                                         "RabbitMQ's ack.",
                                         {}, metrics::latency_buckets())
                          .get()),
      backlog(registry
                  .add_gauge("sluice_relay_backlog",
                             "Rows not yet marked published (measured every sweep interval).")
                  .get()),
      backlog_age(registry
                      .add_gauge("sluice_relay_backlog_oldest_age_seconds",
                                 "Age of the oldest row not yet marked published (0 when none).")
                      .get()),
      queue_items(
          registry
              .add_gauge("sluice_relay_queue_items",
                         "Committed messages in the relay's memory waiting for a confirm slot.")
              .get()),
      unconfirmed(registry
                      .add_gauge("sluice_relay_unconfirmed",
                                 "Publishes in the confirm window, waiting for RabbitMQ's answer.")
                      .get()),
      amqp_connected(registry
                         .add_gauge("sluice_amqp_connected",
                                    "1 while the AMQP connection to RabbitMQ is up (even if "
                                    "blocked).")
                         .get()),
      amqp_blocked(registry
                       .add_gauge("sluice_amqp_blocked",
                                  "1 while RabbitMQ blocks publishing (connection.blocked: a "
                                  "memory or disk alarm).")
                       .get()),
      amqp_reconnects(registry
                          .add_counter("sluice_amqp_reconnects_total",
                                       "AMQP connections set up after a lost one.")
                          .get()) {}

}  // namespace sluice::relay
