#include "sluice/rpc/rpc_topology.hpp"

namespace sluice::rpc {

amqp::field_table flavour_queue_arguments() {
  // Classic queues: proxied requests are mostly transient and short-lived (they expire with
  // their caller's deadline), where a quorum queue's replicated log would add latency to
  // every request for messages nobody needs after a broker restart.
  amqp::field_table args;
  args.set("x-queue-type", "classic");
  return args;
}

boost::asio::awaitable<std::error_code> declare_service_topology(amqp::channel& ch,
                                                                 const services::service& s) {
  const std::string exchange = s.exchange();
  const std::string type = "headers";
  const amqp::exchange_options exchange_opts;
  if (auto ec = co_await ch.exchange_declare(exchange, type, exchange_opts))
    co_return ec;
  for (const auto& f : s.flavours) {
    const std::string queue = s.queue(f.name);
    amqp::queue_options queue_opts;
    queue_opts.arguments = flavour_queue_arguments();
    auto [ec, ok] = co_await ch.queue_declare(queue, queue_opts);
    if (ec)
      co_return ec;
    amqp::field_table binding;
    binding.set("x-match", "all");
    binding.set("flavour", f.name);
    const std::string routing_key;
    if (auto bec = co_await ch.queue_bind(queue, exchange, routing_key, binding))
      co_return bec;
  }
  co_return std::error_code{};
}

}  // namespace sluice::rpc
