#pragma once

#include <string>
#include <system_error>

#include "sluice/amqp/channel.hpp"
#include "sluice/services/service.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::rpc {

// The RabbitMQ objects of one service, declared identically by the ingress (so requests wait
// in the queues before any worker runs) and by the workers: a durable headers exchange
// <namespace>.<service>, and per flavour a durable queue <namespace>.<service>.<flavour> bound
// with x-match=all, flavour=<name>. Declaring both sides with the same arguments matters: a
// queue re-declared with other arguments is refused by the broker (406).
boost::asio::awaitable<std::error_code> declare_service_topology(amqp::channel& ch,
                                                                 const services::service& s);

// The arguments every flavour queue is declared with.
amqp::field_table flavour_queue_arguments();

}  // namespace sluice::rpc
