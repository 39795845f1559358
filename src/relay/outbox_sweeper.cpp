#include "sluice/relay/outbox_sweeper.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

outbox_sweeper::outbox_sweeper(sweeper_options options, relay_store& store,
                               std::shared_ptr<amqp::client> client, queue_modes& modes,
                               schema_latch& schema, topology_declarer& declarer,
                               publish_handoff& handoff, relay_metrics& metrics)
    : options_(options),
      store_(store),
      client_(std::move(client)),
      modes_(modes),
      schema_(schema),
      declarer_(declarer),
      handoff_(handoff),
      metrics_(metrics) {}

void outbox_sweeper::stop() {
  stopping_ = true;
  kick_.notify_all();
}

asio::awaitable<void> outbox_sweeper::run() {
  while (!stopping_) {
    if (!connected() || !modes_.loaded() || !schema_.open()) {
      co_await kick_.wait_until(clock::now() + options_.interval);
      continue;
    }
    claim_result batch = co_await claim();
    while (!batch.rows.empty()) {
      std::vector<uuid> left;
      claim_result next;
      if (batch.rows.size() >= options_.claim.batch && !stopping_) {
        // A full batch: more is waiting. Claim the next one while this one is published, so
        // a backlog drains at the broker's pace rather than one round trip per batch slower.
        auto [published, claimed] = co_await (publish_claimed(batch.rows, left) && claim());
        next = std::move(claimed);
      } else {
        co_await publish_claimed(batch.rows, left);
      }
      if (!left.empty() || stopping_) {
        for (const auto& m : next.rows)
          left.push_back(m.id);
        next.rows.clear();
        if (!left.empty()) {
          const auto ec = co_await store_.release(left, clock::now() + options_.statement_timeout);
          spdlog::debug("relay: sweeper released claims rows={} error=\"{}\"", left.size(),
                        ec ? ec.message() : "");
        }
      }
      batch = std::move(next);
    }
    if (stopping_)
      break;
    co_await kick_.wait_until(clock::now() + options_.interval);
  }
}

asio::awaitable<claim_result> outbox_sweeper::claim() {
  claim_result c = co_await store_.claim(options_.claim, clock::now() + options_.statement_timeout);
  if (c.ec && claim_log_.allow(clock::now())) {
    spdlog::warn("relay: sweeper cannot claim rows error=\"{}\" (not logged since: {})",
                 c.error_text, claim_log_.suppressed);
    claim_log_.suppressed = 0;
  }
  if (!c.rows.empty())
    spdlog::debug("relay: sweeper claimed rows={}", c.rows.size());
  co_return c;
}

asio::awaitable<std::size_t> outbox_sweeper::publish_claimed(std::vector<message>& rows,
                                                             std::vector<uuid>& left) {
  std::size_t handed = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    message& m = rows[i];
    if (stopping_ || !connected()) {
      for (; i < rows.size(); ++i)
        left.push_back(rows[i].id);
      break;
    }
    if (handoff_.in_flight(m.id))
      continue;
    declarer_.sync_connection();
    const queue_mode mode = modes_.mode_of(m.queue);
    if (!declarer_.is_declared(m, mode)) {
      auto target = target_of(m, mode);
      const auto outcome = co_await declarer_.declare(std::move(target));
      if (outcome == topology_declarer::outcome::retry) {
        for (; i < rows.size(); ++i)
          left.push_back(rows[i].id);
        break;
      }
      if (outcome == topology_declarer::outcome::refused) {
        metrics_.failed.inc();
        continue;
      }
    }
    const uuid id = m.id;
    metrics_.swept.inc();
    const auto result = co_await handoff_.send(std::move(m), mode);
    if (result == publish_handoff::result::unencodable)
      continue;  // its claim runs out; the rows after it are not held up
    if (result == publish_handoff::result::publisher_unavailable) {
      left.push_back(id);
      for (++i; i < rows.size(); ++i)
        left.push_back(rows[i].id);
      break;
    }
    ++handed;
  }
  co_return handed;
}

}  // namespace sluice::relay
