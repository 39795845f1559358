#include "sluice/relay/publish_handoff.hpp"

#include "sluice/relay/message_format.hpp"

#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;

std::shared_ptr<publish_handoff> publish_handoff::create(std::shared_ptr<amqp::publisher> publisher,
                                                         topology_declarer& declarer,
                                                         publish_marker& marker,
                                                         relay_metrics& metrics) {
  return std::shared_ptr<publish_handoff>(
      new publish_handoff(std::move(publisher), declarer, marker, metrics));
}

publish_handoff::publish_handoff(std::shared_ptr<amqp::publisher> publisher,
                                 topology_declarer& declarer, publish_marker& marker,
                                 relay_metrics& metrics)
    : publisher_(std::move(publisher)), declarer_(declarer), marker_(marker), metrics_(metrics) {}

bool publish_handoff::window_open() const {
  return publisher_->ready() && !publisher_->window_full();
}

asio::awaitable<publish_handoff::result> publish_handoff::send(message m, queue_mode mode) {
  const uuid id = m.id;
  std::string why;
  auto out = to_outgoing(m, mode, &why);
  if (!out) {
    metrics_.failed.inc();
    if (unencodable_log_.allow(log_limiter::clock::now())) {
      spdlog::error(
          "relay: id={} queue={} cannot be published: {}; it stays unpublished in "
          "sluice_relay_outbox (not logged since: {})",
          id.to_string(), m.queue, why, unencodable_log_.suppressed);
      unencodable_log_.suppressed = 0;
    }
    co_return result::unencodable;
  }
  in_flight_.insert(id);
  const std::weak_ptr<publish_handoff> weak = weak_from_this();
  amqp::publish_callback on_result = [weak, id](amqp::publish_result r) {
    if (const auto self = weak.lock())
      self->on_result(id, r);
  };
  const auto ec = co_await publisher_->publish(std::move(*out), std::move(on_result));
  if (!ec)
    co_return result::sent;
  in_flight_.erase(id);
  metrics_.failed.inc();
  if (ec != amqp::errc::invalid_argument)
    co_return result::publisher_unavailable;
  // This message can never go out as it is; the others can. It stays in the outbox (the
  // backlog metrics show it) for an operator to look at.
  if (unencodable_log_.allow(log_limiter::clock::now())) {
    spdlog::error(
        "relay: id={} cannot be encoded as an AMQP message (a name or property too long); it "
        "stays unpublished in sluice_relay_outbox (not logged since: {})",
        id.to_string(), unencodable_log_.suppressed);
    unencodable_log_.suppressed = 0;
  }
  co_return result::unencodable;
}

void publish_handoff::settled(std::span<const uuid> ids) {
  for (const auto& id : ids)
    in_flight_.erase(id);
}

void publish_handoff::on_result(const uuid& id, const amqp::publish_result& r) {
  const auto now = log_limiter::clock::now();
  switch (r.outcome) {
    case amqp::publish_outcome::acked:
      metrics_.published.inc();
      metrics_.confirm_latency.observe(std::chrono::duration<double>(r.latency).count());
      marker_.add(id);
      break;
    case amqp::publish_outcome::nacked:
      metrics_.nacked.inc();
      in_flight_.erase(id);
      if (nack_log_.allow(now)) {
        spdlog::warn("relay: RabbitMQ nacked id={}; left for the sweeper (not logged since: {})",
                     id.to_string(), nack_log_.suppressed);
        nack_log_.suppressed = 0;
      }
      break;
    case amqp::publish_outcome::returned:
      metrics_.returned.inc();
      in_flight_.erase(id);
      // The queue vanished (deleted by someone) since we declared it: declare again.
      declarer_.forget_queues();
      if (return_log_.allow(now)) {
        spdlog::warn(
            "relay: RabbitMQ returned id={} reason=\"{}\"; queue declared again, message left for "
            "the sweeper (not logged since: {})",
            id.to_string(), r.reply_text, return_log_.suppressed);
        return_log_.suppressed = 0;
      }
      break;
    case amqp::publish_outcome::failed:
      metrics_.failed.inc();
      in_flight_.erase(id);
      // 404 on the publisher channel: an exchange we believed declared is gone (a broker
      // that lost its definitions): declare everything again.
      if (r.error == amqp::reply_code::not_found)
        declarer_.forget_all();
      break;
  }
  if (on_outcome_)
    on_outcome_();
}

asio::awaitable<void> publish_handoff::hold_unconfirmed(
    relay_store& store, std::chrono::milliseconds lease,
    std::chrono::milliseconds statement_timeout) {
  const std::vector<uuid> ids(in_flight_.begin(), in_flight_.end());
  const auto ec = co_await store.hold(ids, lease, store::clock::now() + statement_timeout);
  if (ec) {
    spdlog::warn(
        "relay: cannot hold {} unconfirmed rows for the re-send error=\"{}\"; another "
        "instance may publish them too",
        ids.size(), ec.message());
  } else {
    spdlog::info("relay: connection lost with {} publishes unconfirmed; held for the re-send",
                 ids.size());
  }
}

}  // namespace sluice::relay
